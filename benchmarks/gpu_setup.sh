#!/usr/bin/env bash
# Install the MuJoCo Warp stack on a bare GPU machine that cannot reach a package index.
#
# The GPU image has Python 3.12 + torch (CUDA) but no mujoco / mujoco-warp / warp-lang, and one
# device call carries at most 64 MiB of ignored files, while the warp-lang wheel is ~150 MB.
# So: download the wheels here, split them into 60 MB chunks under build/gpu_wheels/ (git-
# ignored via build/), carry a few chunks per call while the machine is warm, stash them in
# /tmp/gpu_wheels there, reassemble and `pip install --no-index`.
#
#   here:  bash benchmarks/gpu_setup.sh prepare          # download + split; prints the batches
#   GPU:   (one run call per batch, carry=[the batch's paths])
#          bash benchmarks/gpu_setup.sh stash            # copies carried chunks to /tmp/gpu_wheels
#   GPU:   bash benchmarks/gpu_setup.sh install          # reassemble, pip install --no-index, check
#   GPU:   python benchmarks/sim_warp.py && python benchmarks/ppo_gpu.py
set -euo pipefail
cd "$(dirname "$0")/.."
LOCAL=build/gpu_wheels
REMOTE=/tmp/gpu_wheels
PYVER=${GPU_PYVER:-312}
CHUNK=${CHUNK:-60M}
BATCH_BYTES=$((62 * 1024 * 1024))
# what the GPU image lacks (torch and numpy are there); versions pinned like the dev machine
PKGS=(mujoco==4.0.0 mujoco-warp==4.0.0 warp-lang==1.19.0)
PY_DEPS=(gymnasium stable-baselines3 pyyaml tqdm tensorboard imageio imageio-ffmpeg scipy onnx onnxruntime h5py matplotlib)

case "${1:-}" in
prepare)
  PIP=${PIP:-.venv/bin/pip}
  rm -rf "$LOCAL" && mkdir -p "$LOCAL/whl" "$LOCAL/chunks"
  "$PIP" download -q --only-binary=:all: --python-version "$PYVER" --platform manylinux_2_28_x86_64 \
      --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --implementation cp \
      -d "$LOCAL/whl" "${PKGS[@]}" "${PY_DEPS[@]}" --no-deps
  # dependencies of those, minus torch/numpy/CUDA (the image has them)
  "$PIP" download -q --only-binary=:all: --python-version "$PYVER" --platform manylinux_2_28_x86_64 \
      --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --implementation cp \
      -d "$LOCAL/deps" "${PKGS[@]}" "${PY_DEPS[@]}" 2>/dev/null || true
  find "$LOCAL/deps" -name '*.whl' ! -name 'torch-*' ! -name 'nvidia_*' ! -name 'numpy-*' ! -name 'triton-*' \
      -exec mv -n {} "$LOCAL/whl/" \; 2>/dev/null || true
  rm -rf "$LOCAL/deps"
  # one tar of every wheel, split into chunks: the only files ever carried
  tar -C "$LOCAL/whl" -cf "$LOCAL/wheels.tar" .
  split -b "$CHUNK" -d -a 2 "$LOCAL/wheels.tar" "$LOCAL/chunks/wheels.tar.part"
  sha256sum "$LOCAL/wheels.tar" | awk '{print $1}' > "$LOCAL/chunks/wheels.tar.sha256"
  rm -f "$LOCAL/wheels.tar"
  du -sh "$LOCAL/whl" "$LOCAL/chunks"
  echo "carry one chunk per run call (each call: carry=[path], command='bash benchmarks/gpu_setup.sh stash'):"
  for f in "$LOCAL"/chunks/wheels.tar.part*; do echo "  $f"; done
  echo "  (the first call also carries $LOCAL/chunks/wheels.tar.sha256)"
  ;;
stash)
  mkdir -p "$REMOTE"
  shopt -s nullglob
  for f in "$LOCAL"/chunks/*; do cp -f "$f" "$REMOTE/"; echo "stashed $(basename "$f") ($(du -h "$f" | cut -f1))"; done
  ls -la "$REMOTE"
  ;;
install)
  PY=${PY:-python3}
  cat "$REMOTE"/wheels.tar.part* > "$REMOTE/wheels.tar"
  if [ -f "$REMOTE/wheels.tar.sha256" ]; then
    echo "$(cat "$REMOTE/wheels.tar.sha256")  $REMOTE/wheels.tar" | sha256sum -c -
  fi
  mkdir -p "$REMOTE/whl" && tar -C "$REMOTE/whl" -xf "$REMOTE/wheels.tar"
  "$PY" -m pip install -q --no-index --find-links "$REMOTE/whl" "${PKGS[@]}" "${PY_DEPS[@]}"
  "$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e . || "$PY" -m pip install -q --no-deps -e .
  "$PY" - <<'PY'
import torch, warp as wp, mujoco, mujoco_warp
wp.init()
print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
print("mujoco", mujoco.__version__, "mujoco_warp", mujoco_warp.__version__, "warp", wp.__version__, wp.get_cuda_devices())
PY
  ;;
*)
  sed -n '2,15p' "$0"; exit 2 ;;
esac
