#!/usr/bin/env bash
# make demo: the task suite, a scripted expert with a video, then (when PPO is present) a short
# PPO run on `reach` compared with the shipped hand/sparse baselines, and the LLM reward loop on
# `reach` replayed offline from a recorded transcript. CPU only, a few minutes.
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
echo "== scripted expert on push, 20 episodes, video of world 0"
$RR expert --task push --episodes 20 --video "$OUT/push-expert.mp4"

if $RR train --help >/dev/null 2>&1; then
  echo
  echo "== PPO on reach with the hand reward (short CPU budget)"
  $RR train --task reach --reward hand --envs 64 --steps ${DEMO_STEPS:-300000} --seed 0 --out "$OUT/reach-hand"
  $RR eval "$OUT/reach-hand" --episodes 50 --video "$OUT/reach-hand.mp4"
  echo
  echo "== compared with the shipped baselines (policies/reach: hand H and sparse S)"
  $RR compare "$OUT/reach-hand" --out "$OUT/compare"
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
