#!/usr/bin/env bash
# make demo: the task suite, a scripted expert with a video, then (when PPO is present) a short
# PPO run on `drawer-open` compared with the shipped hand/sparse baselines (its HNS: on drawer-open
# the hand and sparse baselines v1 differ, H = 0.86, S = 0.29; on reach the sparse reward already
# solves the task and the HNS is undefined), and the LLM reward loop on `reach` replayed offline
# from a recorded transcript. CPU only. Measured: 15m11s wall (2m56s of CPU) on a 2-core machine
# shared with other jobs (load average 17-21). Its drawer-open run, against baselines v1, printed
# "HNS of your runs against shipped v1 baselines: drawer-hand 0.78 (1 seed, no interval)" (v0: 0.85).
set -euo pipefail
RR=.venv/bin/robreward
OUT=${DEMO_OUT:-runs/demo}
mkdir -p "$OUT"

echo "== the tasks"
$RR tasks
echo
echo "== what a reward writer (or an LLM) is told about 'push'"
$RR tasks show push
echo
echo "== scripted expert on push, 20 episodes, a video of 4 of them"
$RR expert --task push --episodes 20 --video "$OUT/push-expert.mp4" --video-episodes 4

if $RR train --help >/dev/null 2>&1; then
  echo
  echo "== PPO on drawer-open with the hand reward (300k steps: a third of the baselines' budget)"
  $RR train --task drawer-open --reward hand --envs 64 --steps ${DEMO_STEPS:-300000} --seed 0 --out "$OUT/drawer-hand" --overwrite
  $RR eval "$OUT/drawer-hand" --episodes 50 --video "$OUT/drawer-hand.mp4" --video-episodes 4
  echo
  echo "== compared with the shipped baselines (policies/drawer-open: hand H and sparse S)"
  $RR compare "$OUT/drawer-hand" --out "$OUT/compare" --overwrite
fi
if $RR generate --help >/dev/null 2>&1; then
  echo
  echo "== reward code from task text: the Eureka loop on reach, offline"
  echo "   (replaying examples/transcripts/reach: recorded example responses, not a live model)"
  rm -rf "$OUT/gen-reach"
  $RR generate --task reach --llm replay:examples/transcripts/reach --samples 3 --iterations 2 --steps 30000 \
    --final-seeds 1 --out "$OUT/gen-reach"
fi
echo
echo "demo outputs in $OUT/"
