"""What a state progress model reads of the task's observation (``ProgressConfig.features``).

- ``observation``: the observation vector as it is.
- ``obs-norms``: each part of the observation (``TaskSpec.obs_layout``) as its norm (a distance, a speed);
  one-number parts as they are. No absolute position or direction for Φ to latch on to (docs/progress.md
  "What PPO does with Φ"), but no height either: a cube held 8 cm up and one on the table differ in the norm
  of its position by less than two cubes lying apart do.
- ``obs-norms-z``: as obs-norms, except that a 3-D position, offset or velocity (a part whose StateField has
  shape (3,) and unit m or m/s) is read as two numbers, its horizontal norm and its height z (MuJoCo's z is
  up). Φ stays blind to where on the table something is and to the heading, and sees what gravity makes
  different: how high the cube is, whether the gripper is above it or beside it.

Only the choice is saved with a run: the parts are derived from the task's obs_layout and state_fields when
the net is built, as they were when it was fitted.
"""

from __future__ import annotations

import torch

from robreward.envs.spec import TaskSpec

OBSERVATION, OBS_NORMS, OBS_NORMS_Z = "observation", "obs-norms", "obs-norms-z"
FEATURES = (OBSERVATION, OBS_NORMS, OBS_NORMS_Z)
SPATIAL_UNITS = ("m", "m/s")

def is_spatial(field) -> bool:
    """A 3-D position, offset or velocity (a StateField of shape (3,) in m or m/s): what obs-norms-z reads as its
    horizontal norm and its height."""
    return tuple(field.shape) == (3,) and field.unit in SPATIAL_UNITS


Part = tuple[int, int, bool]  # [start, end) of the observation, and whether it is read as (horizontal norm, z)


def observation_parts(spec: TaskSpec, features: str = OBS_NORMS) -> tuple[Part, ...]:
    """The parts of ``spec``'s observation the features read (empty for ``observation``: the vector as it is)."""
    if features not in FEATURES:
        raise ValueError(f"features must be one of {', '.join(FEATURES)}, got {features!r}")
    if features == OBSERVATION:
        return ()
    fields = {f.name: f for f in spec.state_fields}
    out, start = [], 0
    for name, size in spec.obs_layout:
        field = fields.get(name)
        spatial = features == OBS_NORMS_Z and int(size) == 3 and field is not None and is_spatial(field)
        out.append((start, start + int(size), spatial))
        start += int(size)
    return tuple(out)


def part_width(part: Part) -> int:
    """How many numbers a part becomes: 2 for (horizontal norm, z), else 1."""
    return 2 if part[2] else 1


def read_parts(obs: torch.Tensor, parts: tuple[Part, ...]) -> torch.Tensor:
    """The features [N, sum of part widths] of observations [N, obs_dim]."""
    cols = []
    for start, end, spatial in parts:
        if end - start == 1:
            cols.append(obs[:, start:end])
        elif spatial:
            cols.append(torch.linalg.norm(obs[:, start:end - 1], dim=-1, keepdim=True))
            cols.append(obs[:, end - 1:end])
        else:
            cols.append(torch.linalg.norm(obs[:, start:end], dim=-1, keepdim=True))
    return torch.cat(cols, -1)


def feature_names(spec: TaskSpec, features: str) -> list[str]:
    """A name per state feature of ``features`` on ``spec``: ``cube_pos.xy``/``cube_pos.z`` (horizontal norm, height),
    ``|ee_vel|`` (a norm), ``grasped`` (a one-number part), ``ee_pos[0]`` (the observation as it is)."""
    parts = observation_parts(spec, features)
    if not parts:
        return [name if int(size) == 1 else f"{name}[{i}]" for name, size in spec.obs_layout for i in range(int(size))]
    out = []
    for (name, _), (start, end, spatial) in zip(spec.obs_layout, parts):
        out += [f"{name}.xy", f"{name}.z"] if spatial else [name if end - start == 1 else f"|{name}|"]
    return out
