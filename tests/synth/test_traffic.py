import numpy as np

from geopre.synth import traffic, world

CARS = [world.CAR_BODY, world.CAR_CABIN, world.CAR_UNDER]


def road_extent(scene, posed, mask):
    """(s_min, s_max, n_min, n_max) of each masked primitive's corners in road coordinates."""
    corners = posed.corners_world()[mask]
    s, n = scene.road.to_road(corners[..., 0].ravel(), corners[..., 2].ravel())
    s, n = s.reshape(corners.shape[:2]), n.reshape(corners.shape[:2])
    return s.min(1), s.max(1), n.min(1), n.max(1)


def test_cross_traffic_drives_through_crossroads_and_meets_nobody():
    intr = world.Intrinsics.from_hfov(64, 32, 80.0)
    crossed = 0
    for style in (world.SUBURBAN, world.CITY):
        for seed in range(8):
            seq = world.make_sequence(seed, 12.0, 10.0, intr, style=style)
            scene, traj, boxes = seq.scene, seq.trajectory, seq.scene.boxes
            if boxes.lines is None:
                continue
            g = scene.ground
            kerb = g["lanes"] * g["lane_width"] + g["parking"] + g["sidewalk"]
            junctions = np.array(traffic.crossroads(scene))
            lane_cars = np.isin(boxes.material, CARS) & (boxes.speed != 0) & ~boxes.lines
            sides = set()
            for k in range(len(traj)):
                posed = boxes.at(float(traj.traffic_time[k]), scene.road)
                s0, s1, n0, n1 = road_extent(scene, posed, boxes.lines)
                on_road = (n0 < kerb) & (n1 > -kerb)
                # On the road, a cross car is inside its crossroads' mouth.
                mid = 0.5 * (s0 + s1)[on_road, None]
                assert np.all(np.any((mid > junctions[:, 0]) & (mid < junctions[:, 1]), axis=1))
                sides.update(np.sign(0.5 * (n0 + n1)[on_road]).tolist())
                if not on_road.any():
                    continue
                # While one is on the road, the ego car (camera, and its body 3 m behind to 2.5 m
                # ahead) is clear of it, and so is every car driving along the road.
                d = traj.distance[k]
                assert np.all((d + 2.5 < s0[on_road]) | (d - 3.0 > s1[on_road]))
                ls0, ls1, ln0, ln1 = road_extent(scene, posed, lane_cars)
                for a, b, c, e in zip(s0[on_road], s1[on_road], n0[on_road], n1[on_road]):
                    assert not np.any((ls0 < b) & (ls1 > a) & (ln0 < e) & (ln1 > c))
            crossed += sides == {-1.0, 1.0}
    assert crossed >= 3, "cross cars should be seen on both halves of the road in several drives"


def test_cross_traffic_waits_when_the_ego_car_stops():
    intr = world.Intrinsics.from_hfov(64, 32, 80.0)
    for seed in range(20):
        seq = world.make_sequence(seed, 12.0, 10.0, intr, drive=world.DriveConfig(stop_probability=1.0))
        traj, boxes = seq.trajectory, seq.scene.boxes
        stopped = np.flatnonzero(traj.stopped[1:] & traj.stopped[:-1])
        if boxes.lines is None or len(stopped) == 0:
            continue
        k = stopped[0]
        a, b = (boxes.at(float(traj.traffic_time[i]), seq.scene.road) for i in (k, k + 1))
        np.testing.assert_array_equal(a.lo[boxes.lines], b.lo[boxes.lines])
        moving = np.flatnonzero(~traj.stopped[1:])[0]
        a, b = (boxes.at(float(traj.traffic_time[i]), seq.scene.road) for i in (moving, moving + 1))
        assert not np.array_equal(a.lo[boxes.lines], b.lo[boxes.lines])
        return
    raise AssertionError("no drive with cross traffic and a stop")


def test_cross_traffic_rides_the_hills_as_one_car():
    """On sloped ground a crossing car's wheels-down face (largest y, Y is down) follows the terrain
    under it, and all boxes of one car rise by the same amount between two traffic times."""
    intr = world.Intrinsics.from_hfov(64, 32, 80.0)
    checked = 0
    for seed in range(16):
        seq = world.make_sequence(seed, 12.0, 10.0, intr)
        scene, traj, boxes = seq.scene, seq.trajectory, seq.scene.boxes
        if boxes.lines is None or scene.terrain.slope_bound < 0.02:
            continue
        t0, t1 = float(traj.traffic_time[0]), float(traj.traffic_time[-1])
        a, b = boxes.at(t0, scene.road), boxes.at(t1, scene.road)
        rise = (b.hi[:, 1] - a.hi[:, 1])[boxes.lines]
        # One car's parts share an anchor (path_s, path_n): the same rise for all of them.
        for key in {(s, n) for s, n in zip(boxes.path_s[boxes.lines], boxes.path_n[boxes.lines])}:
            same = (boxes.path_s[boxes.lines] == key[0]) & (boxes.path_n[boxes.lines] == key[1])
            assert np.ptp(rise[same]) < 1e-9
        corners = b.corners_world()[boxes.lines]
        path_s, path_n = boxes.path_s[boxes.lines], boxes.path_n[boxes.lines]
        for key in {(s, n) for s, n in zip(path_s, path_n)}:
            car = corners[(path_s == key[0]) & (path_n == key[1])].reshape(-1, 3)
            centre = car.mean(axis=0)
            sunk = car[:, 1].max() - scene.terrain.height(centre[0], centre[2])
            # The car's lowest part reaches the ground under it (sunk a few decimetres), never floats.
            assert 0.0 <= sunk <= 0.5
        checked += 1
    assert checked >= 2
