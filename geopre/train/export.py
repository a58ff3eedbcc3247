"""`geopre export`: the pretrained structure encoder in the two forms people load.

* ``<out>``: what monodepth2's ``save_model`` writes for its encoder: every ``ResnetEncoder`` key
  (``encoder.`` + the torchvision name, the classifier ``encoder.fc.*`` included) plus the training
  ``height``, ``width`` and ``use_stereo``, to drop into monodepth2 or ``geopre finetune --init``.
* ``<out stem>_torchvision.pth``: a plain torchvision ResNet state dict without ``fc``, which loads
  with ``strict=True`` into ``torchvision.models.resnetXX()`` once ``fc`` is replaced by Identity.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from safetensors.torch import load_file

from geopre.errors import UserError
from geopre.io import atomic_path, ensure_writable_dir
from geopre.train.checkpoint import Checkpointer
from geopre.train.pretrain import load_run_config

PREFIX = "structure_encoder."


def encoder_state(run_dir: Path) -> dict[str, torch.Tensor]:
    """The structure encoder's weights from a run's latest checkpoint, under torchvision's names."""
    checkpoint = Checkpointer(run_dir).latest()
    if checkpoint is None:
        raise UserError(f"{run_dir} has no checkpoint yet: let `geopre pretrain` run until it saves one")
    weights = load_file(str(checkpoint / "model.safetensors"))
    state = {k[len(PREFIX):]: v for k, v in weights.items() if k.startswith(PREFIX)}
    if not state:
        raise UserError(f"{checkpoint} holds no structure encoder (is it a pretraining run?)")
    return state


def export_encoder(run_dir: Path | str, out: Path | str) -> tuple[Path, Path]:
    run_dir, out = Path(run_dir), Path(out)
    config = load_run_config(run_dir)
    ensure_writable_dir(out.parent)
    state = encoder_state(run_dir)
    # Prove the torchvision form loads strictly before writing anything.
    reference = getattr(torchvision.models, config["arch"])(weights=None)
    # monodepth2 loads encoder.pth strictly into a whole torchvision ResNet, so it needs fc.* although
    # its forward pass stops at layer4. Pretraining has no classifier: zeros fill the slot.
    classifier = {f"fc.{k}": torch.zeros_like(v) for k, v in reference.fc.state_dict().items()}
    reference.fc = torch.nn.Identity()
    reference.load_state_dict(state, strict=True)
    width, height = config["size"]
    monodepth2 = {f"encoder.{k}": v for k, v in {**state, **classifier}.items()}
    monodepth2.update({"height": height, "width": width, "use_stereo": False})
    torchvision_path = out.with_name(f"{out.stem}_torchvision{out.suffix or '.pth'}")
    for path, payload in ((out, monodepth2), (torchvision_path, state)):
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
    return out, torchvision_path
