"""The trained depth model as ``geopre finetune`` saves it and ``evaluate`` / ``predict`` load it.

A model file is one ``.safetensors`` holding the depth network (``depth.*``) and, for monocular
modes, the pose network (``pose.*``), with a ``geopre`` metadata entry (:class:`ModelInfo`) that
says how to rebuild and use it: architecture, scales, training size, depth range, mode and the
stereo baseline of the training rig. So a model file is usable on its own, without its run folder.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from geopre.data.depth_dataset import STEREO, frame_ids_for
from geopre.errors import UserError
from geopre.io import atomic_path
from geopre.model.depth import DepthNet, PoseNet, disp_to_depth
from geopre.model.geometry import pose_vec_to_matrix
from geopre.model.init import initialise_encoders
from geopre.train.metrics import post_process_disparity

METADATA_KEY = "geopre"
MODEL_FILE = "model.safetensors"  # weights after the last finished epoch
BEST_FILE = "best.safetensors"  # weights of the best validation epoch
INFO_FILE = "model_info.json"  # the same ModelInfo, readable next to checkpoints


@dataclass(frozen=True)
class ModelInfo:
    """What a user of a trained model needs besides its weights."""

    arch: str = "resnet18"
    scales: int = 4
    mode: str = "M"
    width: int = 640
    height: int = 192
    min_depth: float = 0.1
    max_depth: float = 100.0
    # Metres between the training rig's cameras. Stereo-trained (S, MS) depth is in units of
    # baseline / 0.1 (monodepth2's nominal baseline), so this makes it metric.
    stereo_baseline: float = 0.54

    @property
    def metric(self) -> bool:
        """Whether depth times :func:`~geopre.train.metrics.stereo_scale_factor` is in metres."""
        return STEREO in frame_ids_for(self.mode)


class DepthModel(nn.Module):
    """Depth network plus, for M and MS, the pose network; one module so DDP and checkpoints see both.

    ``forward(inputs, stereo_tx)`` takes the colour-augmented frames ``{"0", "-1", "1", "s"}`` and
    returns ``({scale: disparity}, {frame: (B, 4, 4) transform from target camera to frame camera})``.
    """

    def __init__(self, arch: str = "resnet18", scales: int = 4, mode: str = "M"):
        super().__init__()
        self.frame_ids = frame_ids_for(mode)
        self.depth = DepthNet(arch, scales)
        temporal = [f for f in self.frame_ids[1:] if f != STEREO]
        self.pose = PoseNet(arch) if temporal else None

    def forward(self, inputs: dict[str, torch.Tensor], stereo_tx: torch.Tensor):
        target = inputs["0"]
        disps = self.depth(target)
        poses = {}
        for frame in self.frame_ids[1:]:
            if frame == STEREO:
                poses[STEREO] = stereo_poses(stereo_tx)
            elif frame < 0:
                # monodepth2 feeds pairs in temporal order, so the pose network learns one
                # direction; the previous frame's transform is the inverse of (previous -> target).
                axis_angle, translation = self.pose(inputs[str(frame)], target)
                poses[str(frame)] = pose_vec_to_matrix(axis_angle, translation, invert=True)
            else:
                axis_angle, translation = self.pose(target, inputs[str(frame)])
                poses[str(frame)] = pose_vec_to_matrix(axis_angle, translation)
        return disps, poses


def stereo_poses(stereo_tx: torch.Tensor) -> torch.Tensor:
    """(B, 4, 4) pure x-translations by the dataset's signed nominal baseline (see KittiDepthDataset)."""
    poses = torch.eye(4, device=stereo_tx.device, dtype=stereo_tx.dtype).repeat(stereo_tx.shape[0], 1, 1)
    poses[:, 0, 3] = stereo_tx
    return poses


def initialise_model(model: DepthModel, init: str, imagenet_weights: Path | None = None) -> str:
    """Starting weights for the depth encoder and, for M/MS, the pose encoder (see
    :func:`geopre.model.init.initialise_encoders`); returns the source used."""
    encoders = [model.depth.encoder] + ([model.pose.encoder] if model.pose is not None else [])
    return initialise_encoders(encoders, init, imagenet_weights)


def save_model(path: Path, model: DepthModel, info: ModelInfo) -> None:
    """Write the model's weights with ``info`` in the metadata, atomically."""
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(weights, str(tmp), metadata={METADATA_KEY: json.dumps(asdict(info))})


def resolve_model_file(path: Path, best: bool = False) -> Path:
    """A run folder -> its model (or best) file; a checkpoint folder -> its weights; a file -> itself."""
    path = Path(path)
    if path.is_dir():
        wanted = path / (BEST_FILE if best else MODEL_FILE)
        if wanted.is_file():
            return wanted
        # --best must never quietly score the last epoch instead: say what the folder does hold.
        present = [name for name in (MODEL_FILE, BEST_FILE) if (path / name).is_file()]
        holds = f"it holds only {' and '.join(present)}" if present else "it holds no model file"
        hint = (f"drop --best to use {MODEL_FILE} (no epoch has been validated yet)" if best and MODEL_FILE in present
                else "pass a finetune run folder, a checkpoint or a .safetensors file")
        raise UserError(f"{path}: no {wanted.name} inside ({holds}); {hint}")
    if not path.is_file():
        raise UserError(f"{path}: model not found; pass a finetune run folder, a checkpoint or a .safetensors file")
    if best:
        raise UserError(f"--best picks best.safetensors of a run folder, but {path} is a model file: "
                        f"drop --best, or pass the run folder")
    return path


def _read_info(weights_file: Path) -> ModelInfo:
    try:
        with safe_open(str(weights_file), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError) as error:
        raise UserError(f"{weights_file}: not a readable safetensors file ({error})") from None
    if METADATA_KEY in metadata:
        return ModelInfo(**json.loads(metadata[METADATA_KEY]))
    # Checkpoints (RUN/checkpoints/step_N/model.safetensors) carry only the step; the run has the info.
    for folder in list(weights_file.parents)[:3]:
        if (folder / INFO_FILE).is_file():
            return ModelInfo(**json.loads((folder / INFO_FILE).read_text()))
    raise UserError(f"{weights_file}: no geopre model information (not written by geopre finetune?)")


def load_model(path: Path, best: bool = False, device: str | torch.device = "cpu") -> tuple[DepthModel, ModelInfo]:
    """Rebuild a trained :class:`DepthModel` from a run folder, a checkpoint folder or a file; eval mode."""
    weights_file = resolve_model_file(path, best)
    info = _read_info(weights_file)
    model = DepthModel(info.arch, info.scales, info.mode)
    state = load_file(str(weights_file))
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise UserError(f"{weights_file}: weights do not match a {info.arch} {info.mode} model ({str(error).splitlines()[0]})") from None
    return model.to(device).eval(), info


@torch.no_grad()
def predict_disparity(depth_net: nn.Module, images: torch.Tensor, info: ModelInfo,
                      post_process: bool = False) -> np.ndarray:
    """(B, 3, H, W) images at the training size -> (B, H, W) scaled disparity (1 / depth), float32.

    "Scaled" as monodepth2's evaluation uses it: the sigmoid mapped onto [1/max_depth, 1/min_depth].
    ``post_process`` also predicts the mirrored images (in the same forward pass, as monodepth2) and
    blends both with :func:`~geopre.train.metrics.post_process_disparity`.
    """
    if post_process:
        images = torch.cat([images, torch.flip(images, [3])])
    disp = depth_net(images)[0]
    scaled, _ = disp_to_depth(disp.float(), info.min_depth, info.max_depth)
    scaled = scaled[:, 0].cpu().numpy()
    if not post_process:
        return scaled
    count = len(scaled) // 2
    return post_process_disparity(scaled[:count], scaled[count:, :, ::-1])
