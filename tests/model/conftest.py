"""Model tests run on one CPU thread.

The test machine's two cores are shared; two intra-op threads competing with other processes
spin-wait and run several times slower than one.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
