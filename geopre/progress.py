"""Progress bars on stderr, shown only on a terminal (CI logs and pipes stay clean)."""

from __future__ import annotations

from tqdm.auto import tqdm


def progress(total: int | None = None, desc: str = "", unit: str = "it", **kwargs) -> tqdm:
    return tqdm(total=total, desc=desc, unit=unit, disable=None, dynamic_ncols=True, leave=False, **kwargs)
