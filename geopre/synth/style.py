"""Street styles: what a generated street looks like (lanes, widths, building sizes, traffic and
pedestrian densities, how often a lead car drives ahead), with the two presets ``SUBURBAN``
(KITTI-like) and ``CITY`` (Cityscapes-like) and the ``STYLES`` table the CLI picks from by name.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WorldStyle:
    """What a street looks like. Two presets: suburban (KITTI-like) and city (Cityscapes-like)."""

    name: str
    lanes_per_side: int = 1
    lane_width: float = 3.0
    parking_width: float = 2.5
    sidewalk_width: float = 3.0
    setback: tuple[float, float] = (1.0, 8.0)
    building_height: tuple[float, float] = (5.0, 18.0)
    building_length: tuple[float, float] = (8.0, 25.0)
    gap_probability: float = 0.25  # an empty lot: a depth discontinuity down to the far fence
    parked_car_probability: float = 0.45  # per 7 m parking slot
    oncoming_cars_per_100m: float = 1.2
    same_way_cars_per_100m: float = 1.0  # in the other lanes of the ego car's side (if any)
    pedestrians_per_100m: float = 0.5
    tree_probability: float = 0.5  # per 12 m slot, on the sidewalk
    pole_spacing: float = 30.0
    verge: str = "grass"  # what covers the ground between sidewalk and buildings
    facade_palette: tuple[tuple[float, float, float], ...] = (
        (0.78, 0.72, 0.62), (0.70, 0.55, 0.45), (0.85, 0.83, 0.78), (0.60, 0.62, 0.66),
        (0.76, 0.66, 0.50), (0.55, 0.45, 0.40),
    )
    # Street geometry: bends of radius >= 1 / max_curvature, side streets, parks and car parks.
    bend_probability: float = 0.55  # per straight: the next stretch bends
    max_curvature: float = 1 / 35.0  # 1/m
    straight_length: tuple[float, float] = (10.0, 110.0)
    side_streets_per_100m: float = 0.8
    open_space_probability: float = 0.12  # per frontage: a park or a car park instead of a building
    billboard_probability: float = 0.08  # per 12 m of sidewalk
    lane_width_jitter: float = 0.35  # m, per scene
    lead_car_probability: float = 0.7  # per drive: a car ahead in the ego lane, 10-44 m away
    extra_lane_probability: float = 0.3  # per scene: one more lane each way; the ego car takes any lane
    boundary_probability: float = 0.5  # per frontage: a hedge, fence or garden wall at the plot's edge

    @property
    def road_half_width(self) -> float:
        """Centre line to kerb: driving lanes, then a parking lane."""
        return self.lanes_per_side * self.lane_width + self.parking_width

    def lane_centre(self, lane: int) -> float:
        """X of the centre of driving lane ``lane`` (0 = next to the centre line) on the right."""
        return (lane + 0.5) * self.lane_width


SUBURBAN = WorldStyle(name="suburban")
CITY = WorldStyle(
    name="city",
    lanes_per_side=2,
    lane_width=2.75,
    parking_width=2.0,
    sidewalk_width=2.5,
    setback=(0.0, 1.5),
    building_height=(12.0, 30.0),
    building_length=(10.0, 30.0),
    gap_probability=0.08,
    boundary_probability=0.12,
    parked_car_probability=0.6,
    oncoming_cars_per_100m=2.5,
    same_way_cars_per_100m=1.5,
    extra_lane_probability=0.2,
    pedestrians_per_100m=3.0,
    tree_probability=0.15,
    pole_spacing=20.0,
    verge="pavement",
    facade_palette=(
        (0.82, 0.80, 0.74), (0.66, 0.60, 0.55), (0.90, 0.88, 0.84), (0.50, 0.50, 0.52),
        (0.72, 0.64, 0.56),
    ),
    bend_probability=0.35,
    max_curvature=1 / 45.0,
    side_streets_per_100m=1.4,
    open_space_probability=0.06,
    billboard_probability=0.12,
)
STYLES = {"suburban": SUBURBAN, "city": CITY}
