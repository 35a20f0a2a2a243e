#!/usr/bin/env bash
# Install the MuJoCo Warp stack on a bare GPU machine that cannot reach a package index, and measure.
#
# The GPU image has Python 3.12 + torch (CUDA), numpy, h5py, onnx, opencv, transformers, but no mujoco,
# mujoco-warp, warp-lang, gymnasium or stable-baselines3, and one device call carries at most 64 MiB
# while the warp-lang wheel alone is ~150 MB. So: here, unpack the wheels into one site folder (warp's
# examples and tests left out) with robreward's entry points, xz it (~110 MB) and split it into chunks
# under build/gpu_site/partNN/ (git-ignored); carry one chunk per call while the machine is warm (it stays
# warm ~30 s after a call), stash it in /tmp/gpu_site there, and unpack once all are there.
#
#   here:  bash benchmarks/gpu_setup.sh prepare            # download + unpack + xz + split; prints the chunks
#   GPU:   (carry=[build/gpu_site/part00]) bash benchmarks/gpu_setup.sh stash
#   GPU:   (carry=[build/gpu_site/part01, runs/...]) bash benchmarks/gpu_setup.sh stash measure
#
# `measure` unpacks the site (once), then runs, each under a time limit, writing JSON to $OUT (or
# benchmarks/results/): progress.py --speed on the warp backend (MJWarp batch renderer + an image progress
# model, and PPO with image shaping vs the hand reward), ppo_gpu.py (robreward PPO end to end, SB3 on the
# same GPU env) and sim_warp.py (env vs raw mjw.step). Give it runs/bench-progress-speed-push-64-default
# (an image progress run: `python benchmarks/progress.py --speed --tasks push --camera ''` makes one).
set -uo pipefail
cd "$(dirname "$0")/.."
LOCAL=build/gpu_site
REMOTE=/tmp/gpu_site
PYVER=${GPU_PYVER:-3.12}
CHUNK=${CHUNK:-56000000}
# what the GPU image lacks, pinned like the dev machine (.venv); mujoco-studio(-wasm) is not imported
PKGS=(mujoco==4.0.1 mujoco-core==4.0.1 mujoco-warp==4.0.0 warp-lang==1.19.0 gymnasium==1.4.0
      farama-notifications stable-baselines3==2.9.2 glfw pyopengl)

case "${1:-}" in
prepare)
  set -e
  rm -rf "$LOCAL" && mkdir -p "$LOCAL/whl" "$LOCAL/site"
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 -d "$LOCAL/whl" "${PKGS[@]}"
  for w in "$LOCAL"/whl/*.whl; do unzip -q -o "$w" -d "$LOCAL/site"; done
  rm -rf "$LOCAL/site/warp/examples" "$LOCAL/site/warp/tests"
  # robreward's entry points (reward sources: progress:, pref:, ...) without installing it there
  dist=$(ls -d .venv/lib/python3*/site-packages/robreward-*.dist-info | head -1)
  mkdir -p "$LOCAL/site/$(basename "$dist")" && cp "$dist/METADATA" "$dist/entry_points.txt" "$LOCAL/site/$(basename "$dist")/"
  tar -C "$LOCAL/site" -cf - . | xz -T0 -6 > "$LOCAL/site.tar.xz"
  split -b "$CHUNK" -d -a 2 "$LOCAL/site.tar.xz" "$LOCAL/site.tar.xz.part"
  sha256sum "$LOCAL/site.tar.xz" | awk '{print $1}' > "$LOCAL/site.tar.xz.sha256"
  for f in "$LOCAL"/site.tar.xz.part*; do d="$LOCAL/part${f##*.part}"; mkdir -p "$d"; mv "$f" "$d/"; done
  cp "$LOCAL/site.tar.xz.sha256" "$LOCAL/part00/"
  rm -rf "$LOCAL/whl" "$LOCAL/site" "$LOCAL/site.tar.xz"
  du -sh "$LOCAL"/part*
  ;;
stash|measure)
  mkdir -p "$REMOTE"
  for verb in "$@"; do case "$verb" in
  stash)
    for f in "$LOCAL"/part*/*; do cp -f "$f" "$REMOTE/"; echo "stashed $(basename "$f")"; done ;;
  measure)
    OUT=${OUT:-benchmarks/results}
    # the measurements use MuJoCo Warp's renderer only; the bare image has no libEGL, and MUJOCO_GL=egl would
    # make `import mujoco` fail there
    export PYTHONUNBUFFERED=1 MUJOCO_GL=${MUJOCO_GL:-disable} PYTHONPATH="$PWD:$REMOTE/site"
    if [ ! -d "$REMOTE/site" ]; then
      cat "$REMOTE"/site.tar.xz.part* > "$REMOTE/site.tar.xz"
      echo "$(cat "$REMOTE/site.tar.xz.sha256")  $REMOTE/site.tar.xz" | sha256sum -c - || exit 1
      mkdir -p "$REMOTE/site" && xz -d -T0 < "$REMOTE/site.tar.xz" | tar -C "$REMOTE/site" -xf - || exit 1
    fi
    python3 -c "import torch, warp as wp, mujoco, mujoco_warp; wp.init(); print('torch', torch.__version__, torch.cuda.get_device_name(0), 'mujoco', mujoco.__version__, 'mujoco_warp', mujoco_warp.__version__, 'warp', wp.__version__)" || exit 1
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    # 1. image progress shaping on the GPU (issue 21): frames/s of render + score, env-steps/s hand vs shaped
    timeout "${T_PROGRESS:-200}" python3 benchmarks/progress.py --speed --tasks push --camera '' --backend warp \
        --device cuda:0 --num-envs "${PROGRESS_ENVS:-2048}" --speed-steps "${PROGRESS_STEPS:-500000}"
    # progress.py adds its cells to benchmarks/results/progress.json; a separate $OUT gets a copy
    [ "$OUT" -ef benchmarks/results ] || cp benchmarks/results/progress.json "$OUT/progress.json"
    # 2. PPO end to end on the GPU, SB3 on the same env
    timeout "${T_PPO:-150}" python3 benchmarks/ppo_gpu.py --steps "${PPO_STEPS:-30000000}" --timeout "${T_PPO_RUN:-95}" \
        --sb3-envs 64 --sb3-steps 65536 --sb3-timeout 45 --out "$OUT/ppo_gpu.json"
    # 3. the env against a raw mjw.step loop
    timeout "${T_SIM:-120}" python3 benchmarks/sim_warp.py --seconds 2 --out "$OUT/sim_warp.json"
    ls -la "$OUT" ;;
  esac; done
  ;;
*)
  sed -n '2,19p' "$0"; exit 2 ;;
esac
