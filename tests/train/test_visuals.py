import numpy as np

from geopre.train.visuals import flow_to_colour, grid


def test_flow_colour_wheel_directions():
    flow = np.zeros((2, 1, 5))
    flow[:, 0, 1] = (1, 0)   # right
    flow[:, 0, 2] = (-1, 0)  # left
    flow[:, 0, 3] = (0, 1)   # down
    flow[:, 0, 4] = (0.5, 0)  # right, half as fast
    colour = flow_to_colour(flow).astype(int)
    assert tuple(colour[0, 0]) == (255, 255, 255)  # no motion is white
    assert len({tuple(c) for c in colour[0, 1:4]}) == 3  # three directions, three hues
    # Half the speed, same hue: halfway to white.
    assert np.all(np.abs(colour[0, 4] - (colour[0, 1] + 255) / 2) <= 1)


def test_grid_layout():
    tiles = [np.full((2, 3, 3), i, np.uint8) for i in range(3)]
    out = grid(tiles, columns=2)
    assert out.shape == (4, 6, 3) and out[2, 0, 0] == 2 and out[3, 5, 0] == 0
