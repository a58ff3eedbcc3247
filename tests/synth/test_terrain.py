import numpy as np

from geopre.synth import terrain as tr
from geopre.synth import world


def hills() -> tr.Terrain:
    """Two short, steep-ish waves: more curvature than any scene draws, the hard case for the march."""
    return tr.Terrain(np.array([1.5, 0.8]), np.array([[0.05, 0.06], [-0.09, 0.02]]), np.array([0.3, 1.1]), 0.4)


def brute_force_crossing(terrain, origin, direction, t_max, step=1e-3):
    t = np.arange(tr.CONVERGED, t_max, step)
    p = origin + t[:, None] * direction
    under = p[:, 1] >= terrain.height(p[:, 0], p[:, 2])
    return t[np.argmax(under)] if under.any() else np.inf


def test_first_crossing_finds_the_first_hit_of_every_ray_even_grazing_ones():
    terrain = hills()
    origin = np.array([3.0, float(terrain.height(3.0, 5.0)) - 1.6, 5.0])
    rng = np.random.default_rng(0)
    # Rays from steeply down to just above the horizon, where they graze the crests.
    pitch = np.concatenate([rng.uniform(-0.05, 0.5, 60), rng.uniform(-0.03, 0.03, 60)])
    yaw = rng.uniform(-np.pi, np.pi, len(pitch))
    dirs = np.stack([np.cos(pitch) * np.sin(yaw), np.sin(pitch), np.cos(pitch) * np.cos(yaw)], -1)
    t = terrain.first_crossing(origin, dirs.astype(np.float32), 0.05, np.float32(150.0))
    expected = np.array([brute_force_crossing(terrain, origin, d, 150.0) for d in dirs])
    assert np.isfinite(expected).sum() > 60 and np.isinf(expected).sum() > 5
    np.testing.assert_array_equal(np.isfinite(t), np.isfinite(expected))
    hit = np.isfinite(t)
    # The march never passes the first crossing and ends within a centimetre of it.
    assert np.all(t[hit] <= expected[hit] + 2e-3) and np.all(t[hit] > expected[hit] - 0.01)


def test_first_crossing_of_a_flat_ground_is_the_plane_solution_and_respects_the_limit():
    dirs = np.array([[0.0, 0.1, 1.0], [0.3, 0.5, 1.0], [0.0, -0.1, 1.0], [0.0, 0.01, 1.0]], np.float32)
    t = tr.FLAT.first_crossing(np.array([0.0, -1.65, 0.0]), dirs, 0.05, np.float32(100.0))
    np.testing.assert_allclose(t[:2], [16.5, 3.3], rtol=1e-6)
    assert np.isinf(t[2]) and np.isinf(t[3])  # upwards; beyond the 100 m limit (165 m)


def test_scene_terrain_is_gentle_and_level_at_the_start():
    slopes = []
    for seed in range(20):
        terrain = tr.make_terrain(np.random.default_rng(seed))
        assert abs(terrain.height(0.0, 0.0)) < 1e-9
        assert terrain.slope_bound <= tr.MAX_SLOPE + 1e-9
        slopes.append(terrain.slope_bound)
    # Some scenes nearly flat, most clearly sloped.
    assert min(slopes) < 0.01 and np.mean(np.array(slopes) > 0.02) > 0.5


def test_every_static_primitive_stands_on_the_ground_without_floating():
    scene = world.generate_scene(11, world.SUBURBAN, length=150.0)
    terrain, boxes = scene.terrain, scene.boxes
    assert terrain.slope_bound > 0.03
    posed = boxes.at(0.0, scene.road)
    corners = posed.corners_world()
    static = boxes.speed == 0
    # Bases (buildings, walls, trunks, poles, undercarriages) reach below the ground at every
    # corner of their footprint; nothing hangs above it.
    grounded = static & np.isin(boxes.material, [world.BUILDING, world.WALL, world.POLE, world.TRUNK, world.CAR_UNDER])
    ground = terrain.height(corners[grounded][..., 0], corners[grounded][..., 2])
    assert grounded.sum() > 50 and np.all(posed.hi[grounded, 1][:, None] > ground)
    # The parts of a parked car move together: body bottom stays on its undercarriage's top.
    under = np.flatnonzero(static & (boxes.material == world.CAR_UNDER))
    np.testing.assert_allclose(posed.lo[under, 1], posed.hi[under + 1, 1])
    # Moving cars ride the terrain too.
    moving = np.flatnonzero((boxes.speed != 0) & (boxes.material == world.CAR_UNDER))
    later = boxes.at(5.0, scene.road)
    footprint = later.corners_world()[moving]
    assert np.all(later.hi[moving, 1][:, None] > terrain.height(footprint[..., 0], footprint[..., 2]))


def test_gradient_and_normal_follow_the_height():
    terrain, e = hills(), 1e-5
    x, z = np.array([13.0, -40.0, 250.0]), np.array([-7.0, 3.0, 90.0])
    gx, gz = terrain.gradient(x, z)
    np.testing.assert_allclose(gx, (terrain.height(x + e, z) - terrain.height(x - e, z)) / (2 * e), atol=1e-8)
    np.testing.assert_allclose(gz, (terrain.height(x, z + e) - terrain.height(x, z - e)) / (2 * e), atol=1e-8)
    normal = terrain.normal(x, z)
    np.testing.assert_allclose(np.linalg.norm(normal, axis=1), 1.0)
    assert np.all(normal[:, 1] < 0)  # up is -Y
    np.testing.assert_allclose(normal[:, 0] / -normal[:, 1], gx)  # perpendicular to the slope along x
