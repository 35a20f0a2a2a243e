"""Rewards learned from feedback: preferences (teachers, segments, the Bradley-Terry reward
ensemble, metrics) and, later, vision models. Imports point down the pipeline: feedback uses
robreward.envs and robreward.rewards, never robreward.rl or the CLI."""
