"""Rewards learned from feedback: preferences (teachers, segments, the Bradley-Terry reward
ensemble, metrics, the learning loop) and, later, vision models. Imports point down the pipeline
(pyproject.toml [tool.importlinter]): feedback sits above robreward.rl, so the preference loop may
import it to train its policy; robreward.rewards, envs, rl and eval never import feedback (the
rewards it learns reach them as registered reward sources, robreward/rewards/spec.py)."""
