"""Image-input preference reward models (`prefs train --reward-inputs image|both`, issue 22 RL-VLM-F): how well they
learn the oracle's preferences from frames, against the state model on the same pairs, and what the image reward
costs per env step.

    .venv/bin/python benchmarks/image_prefs.py               # writes benchmarks/results/image_prefs.json

Accuracy: reach, 16 worlds of random actions for 60 steps (collect_rollout with the post-step states), segments
of 10 steps; 200 oracle-labelled pairs of worlds 0-11 to train on, 300 of worlds 12-15 held out; seeds 0 and 1
(the pairs and the ensemble). The state model is PreferenceReward with its defaults (B-Pref's 3 x 256 heads, up
to 50 epochs); the image models are ImagePreferenceReward with a SmallCNN of 8 channels and 32 features, heads
of 64 x 64, 20 epochs, frames of the top view at 32 and 48 px ("front-": reach's own camera); "both" adds the
state features.

Speed: env-steps/s of a 32-world reach BatchedEnv stepping zero actions, with the hand reward and with an image
reward (48 px top view: every world rendered in one call per step, scored in one forward pass); torch on one
thread, the CPU backend (EGL).
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

OUT = Path(__file__).resolve().parent / "results" / "image_prefs.json"


def main() -> dict:
    os.environ.setdefault("MUJOCO_GL", "egl")
    torch.set_num_threads(1)
    import robreward
    from robreward.feedback.preferences.image_model import FrameBank, ImageInputs, ImagePreferenceReward
    from robreward.feedback.preferences.metrics import preference_accuracy
    from robreward.feedback.preferences.model import EnsembleConfig, Featurizer, PreferenceReward
    from robreward.feedback.preferences.segments import collect_rollout, cut_segments, sample_pairs, with_frame_rows
    from robreward.feedback.preferences.teachers import make_teacher

    results: dict = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                                 "load_before": os.getloadavg()}, "accuracy": {}, "env_steps_per_s": {}}
    env = robreward.make("reach", 16, seed=0, reward="hand")
    rollout, _ = collect_rollout(env, None, 60, seed=0, record_post_states=True)
    featurizer = Featurizer(env.spec)
    oracle = make_teacher("oracle")

    def pairs_for(model, seed):
        rng = np.random.default_rng(seed)
        segments = cut_segments(rollout, 10, featurizer)
        if isinstance(model, ImagePreferenceReward):
            segments = with_frame_rows(segments, model.bank.add_states(rollout.post_sim_states), rollout.num_envs)
        ours = segments.index(torch.nonzero(segments.world < 12).flatten())
        theirs = segments.index(torch.nonzero(segments.world >= 12).flatten())
        train, held = sample_pairs(ours, 200, rng), sample_pairs(theirs, 300, rng)
        return train, oracle.label(train), held, oracle.label(held)

    for name in ("state", "image32", "image48", "both32", "front-image32"):
        for seed in (0, 1):
            if name == "state":
                model = PreferenceReward(featurizer=featurizer, config=EnsembleConfig(seed=seed))
            else:
                size = int(name[-2:])
                camera = "" if name.startswith("front-") else "top"  # "": reach's own camera, front
                inputs = name.removeprefix("front-")[:-2]
                model = ImagePreferenceReward(featurizer, ImageInputs(inputs, size, camera, channels=8, embed_dim=32),
                                              config=EnsembleConfig(hidden=(64, 64), epochs=20, batch_size=64,
                                                                    seed=seed))
                model.bank = FrameBank(env.spec, size, camera)
            train, train_labels, held, held_labels = pairs_for(model, seed)
            start = time.perf_counter()
            model.fit(train, train_labels)
            cell = {"heldout_accuracy": preference_accuracy(model, held, held_labels),
                    "fit_seconds": time.perf_counter() - start}
            results["accuracy"][f"{name}/seed{seed}"] = cell
            print(name, seed, cell, flush=True)
    env.close()
    model = ImagePreferenceReward(featurizer, ImageInputs("image", 48, "top"))
    for label, reward in (("hand", "hand"), ("hand_vs_image48", model)):
        bench = robreward.make("reach", 32, seed=0, reward=reward)
        bench.reset()
        action = torch.zeros(32, bench.act_dim)
        for _ in range(5):
            bench.step(action)
        start = time.perf_counter()
        for _ in range(60):
            bench.step(action)
        results["env_steps_per_s"][label.replace("hand_vs_", "")] = 60 * 32 / (time.perf_counter() - start)
        bench.close()
    results["machine"]["load_after"] = os.getloadavg()
    from robreward.fileio import atomic_write_json

    OUT.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(OUT, results, indent=2)
    print(json.dumps(results["env_steps_per_s"]), "->", OUT)
    return results


if __name__ == "__main__":
    main()
