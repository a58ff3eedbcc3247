#!/usr/bin/env bash
# Builds .venv-peers: the peer tools `make bench` compares geopre with, in a venv of their own that
# sees the main venv's packages (torch, numpy, OpenCV, webdataset) and never installs over them.
# video2dataset 1.1-1.3 pin torch<2 / ==2.0.0 / ==2.1.2 and numpy<2 for captioning and whisper,
# which its frame, resolution and optical-flow subsamplers do not use: it is installed without its
# dependencies, and the ones those subsamplers and its CLI import are installed under a constraint
# file that holds torch, torchvision and numpy at the main venv's versions, so pip fails rather
# than change them. MosaicML streaming comes the same way.
set -euo pipefail
MAIN=${1:-.venv}
PEERS=${2:-.venv-peers}
"$MAIN/bin/python" -m venv "$PEERS"
site=$("$MAIN/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
peer_site=$("$PEERS/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$site" > "$peer_site/geopre-main-venv.pth"
constraints=$(mktemp)
"$MAIN/bin/python" -m pip freeze | grep -E '^(torch|torchvision|numpy|opencv-python-headless|webdataset)==' > "$constraints"
# torchdata 0.7.1 (pinned to torch 2.1.2) only for the datapipes video2dataset's flow stage reads with.
"$PEERS/bin/pip" install -q --no-deps 'video2dataset==1.3.0' 'mosaicml-streaming==0.13.0' 'torchdata==0.7.1'
"$PEERS/bin/pip" install -q -c "$constraints" 'fire<0.6' omegaconf pyarrow pandas fsspec webvtt-py wandb \
  timeout-decorator 'scenedetect==0.6.2' langdetect einops 'transformers==4.37.1' psutil \
  torchaudio soundfile catalogue zstd xxhash python-snappy brotli
"$PEERS/bin/python" -c "import torch, numpy; print('peer venv: torch', torch.__version__, 'numpy', numpy.__version__)"
rm -f "$constraints"
