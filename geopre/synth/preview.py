"""A contact sheet of a few rendered frames and their exact depth: a look at a seed's world
before rendering hours of it (``geopre synth ... --preview OUT.png``).

One row per frame: the image, then its depth coloured as ``geopre predict`` colours its depth
maps (magma disparity, near is bright), so a preview and a prediction read the same way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from geopre.io import save_png
from geopre.synth.render import View

GAP = 4  # px of background between tiles
BACKGROUND = 255
PREVIEW_FRAMES = 4  # rows of a preview


def depth_colours(depth: np.ndarray) -> np.ndarray:
    """(H, W) depth in metres (inf = sky) -> (H, W, 3) uint8, as geopre predict draws depth."""
    from geopre.train.predict import colourise_disparity

    with np.errstate(divide="ignore"):
        return colourise_disparity(np.where(np.isfinite(depth) & (depth > 0), 1.0 / depth, 0.0))


def contact_sheet(views: list[View]) -> np.ndarray:
    """Rows of ``image | depth`` with a ``GAP`` between tiles; narrower rows are padded on the right."""
    rows = [np.concatenate([v.image, np.full((v.image.shape[0], GAP, 3), BACKGROUND, np.uint8),
                            depth_colours(v.depth)], axis=1) for v in views]
    width = max(r.shape[1] for r in rows)
    sheet = np.full((sum(r.shape[0] for r in rows) + GAP * (len(rows) - 1), width, 3), BACKGROUND, np.uint8)
    top = 0
    for row in rows:
        sheet[top:top + row.shape[0], :row.shape[1]] = row
        top += row.shape[0] + GAP
    return sheet


def write_preview(path: Path, views: list[View]) -> tuple[int, int]:
    """Write the contact sheet of ``views`` as a PNG; returns its (width, height)."""
    sheet = contact_sheet(views)
    save_png(path, sheet)
    return sheet.shape[1], sheet.shape[0]
