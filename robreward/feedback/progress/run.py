"""A progress run directory (`robreward progress fit --out RUN`):

    RUN/model.pt        the network's weights: plain tensors only (loads with torch.load(weights_only=True));
                        an ensemble's (--members K) as members.0.* .. members.K-1.*
    RUN/progress.json   schema_version, task (a suite task NAME) and task_version, inputs, input_spec
                        (what the model reads and its size), the resolved ProgressConfig, metrics
                        (held-out and train), the episode split, and for an adapted model its parent run

A run names its task; loading never runs code the run names: the task must be a task of the suite
(``get_task(name, allow_folder=False)``), unless the caller passes the TaskSpec itself (a task folder
the user named on the command line).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from robreward.envs.spec import TaskSpec
from robreward.feedback.progress.ensemble import ProgressEnsemble, encoder_key, members_of
from robreward.feedback.progress.features import OBS_NORMS_Z, OBSERVATION, observation_parts, part_width
from robreward.feedback.progress.model import INPUTS, ProgressConfig, ProgressNet, make_net

SCHEMA_VERSION = 1
MODEL_FILE = "model.pt"
META_FILE = "progress.json"
RANGE_KEYS = ("feature_lo", "feature_hi")  # ProgressNet buffers a run fitted before 2026-12-06 lacks


def input_spec(spec: TaskSpec, inputs: str, config: ProgressConfig | None = None) -> dict:
    state = {"kind": "observation", "dim": spec.obs_dim,
             "meaning": f"the task's observation spec.observe(TaskState) ({spec.obs_dim} floats), as the policy sees it"}
    if config is not None and config.features != OBSERVATION:  # obs-norms, obs-norms-z: the parts (features.py)
        parts = observation_parts(spec, config.features)
        heights = config.features == OBS_NORMS_Z
        state.update(kind="observation part norms" + (" and heights" if heights else ""),
                     dim=sum(map(part_width, parts)),
                     parts=[name + ("(horizontal norm, z)" if spatial else "")
                            for (name, _), (_, _, spatial) in zip(spec.obs_layout, parts)],
                     meaning="each part of the observation as its norm (one-number parts as they are)"
                             + (", a 3-D position, offset or velocity as its horizontal norm and its height z"
                                if heights else ""))
    if inputs == "state":
        return {"inputs": inputs, **state}
    cfg = config or ProgressConfig(task=spec.name, demos=())
    image = {"kind": "image", "size": [cfg.image_size, cfg.image_size], "camera": cfg.camera or spec.camera,
             "encoder": cfg.encoder or "SmallCNN (trained from scratch, saved in model.pt)",
             "meaning": "uint8 RGB frames of every world rendered in one call per step (feedback.vision.frames)"}
    return {"inputs": inputs, "image": image, **({"state": state} if inputs == "both" else {})}


def save_progress_run(out, net: ProgressNet | ProgressEnsemble, config: ProgressConfig, spec: TaskSpec, report: dict,
                      extra: dict | None = None) -> Path:
    """Write model.pt and progress.json into ``out`` (atomically, each)."""
    from robreward.fileio import atomic_path, atomic_write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()
             if not (net.frozen_encoder and encoder_key(k))}  # a pretrained encoder loads from its source
    weights = {"state_dict": state, "obs_dim": spec.obs_dim, "hidden": config.hidden, "inputs": config.inputs,
               "members": len(members_of(net))}
    with atomic_path(out / MODEL_FILE) as tmp:
        torch.save(weights, tmp)
    meta = {"schema_version": SCHEMA_VERSION, "task": spec.name, "task_version": int(spec.version),
            "inputs": config.inputs, "input_spec": input_spec(spec, config.inputs, config),
            "config": dataclasses.asdict(config), "metrics": report, **(extra or {})}
    atomic_write_text(out / META_FILE, json.dumps(meta, indent=2, default=str) + "\n")
    return out


def read_meta(run) -> dict:
    run = Path(run)
    meta_path = run / META_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(f"{str(run)!r} is not a progress run (no {META_FILE}): pass the --out DIR of "
                                "`robreward progress fit`")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{meta_path} is not valid JSON ({err}): refit the model") from None
    if not isinstance(meta, dict) or int(meta.get("schema_version", 0)) > SCHEMA_VERSION:
        raise ValueError(f"{meta_path}: unknown progress run format (schema_version {meta.get('schema_version')!r}); "
                         "upgrade robreward or refit the model")
    return meta


def load_progress_run(run, spec: TaskSpec | None = None,
                      variant: bool = False) -> tuple[ProgressNet | ProgressEnsemble, dict, TaskSpec]:
    """(net in eval mode, progress.json, the task). ``spec``: the task the caller chose (e.g. --task FOLDER);
    the run's task name must match it. Without it the run's task must be a task of the suite. ``variant``
    (one-shot adaptation): ``spec`` may be another task with the same observation size, a variant of the
    run's suite task (e.g. a task folder whose goal differs); the net is built for the run's task."""
    from robreward.envs.registry import get_task

    run = Path(run)
    meta = read_meta(run)
    task = meta.get("task")
    if variant and spec is not None and spec.name != task:
        base = get_task(str(task), allow_folder=False)
        if base.obs_dim != spec.obs_dim:
            raise ValueError(f"task {spec.name!r} observes {spec.obs_dim} floats, the run's task {task!r} "
                             f"{base.obs_dim}: adaptation needs a variant of {task} with the same observation")
        net, meta, _ = load_progress_run(run, base)
        return net, meta, spec
    if spec is None:
        spec = get_task(str(task), allow_folder=False)
    elif spec.name != task:
        raise ValueError(f"progress run {str(run)!r} was fitted on task {task!r}, not {spec.name!r}: fit one on "
                         f"{spec.name} (robreward progress fit --task {spec.name} ...)")
    if int(meta.get("task_version", -1)) != int(spec.version):
        raise ValueError(f"progress run {str(run)!r} was fitted on {task} v{meta.get('task_version')}, the task here "
                         f"is v{spec.version}: refit it")
    if meta.get("inputs") not in INPUTS:
        raise ValueError(f"progress run {str(run)!r} reads {meta.get('inputs')!r} inputs; this robreward knows "
                         f"{', '.join(INPUTS)}: upgrade robreward or refit the model")
    weights = torch.load(run / MODEL_FILE, map_location="cpu", weights_only=True)
    if int(weights.get("obs_dim", -1)) != spec.obs_dim:
        raise ValueError(f"progress run {str(run)!r} reads observations of size {weights.get('obs_dim')}, task "
                         f"{spec.name} has {spec.obs_dim}: refit it")
    config = config_of(meta)
    if weights.get("inputs", "state") != config.inputs:
        raise ValueError(f"progress run {str(run)!r}: model.pt and {META_FILE} disagree on the inputs: refit it")
    if int(weights.get("members", 1)) != config.members:
        raise ValueError(f"progress run {str(run)!r}: model.pt holds {weights.get('members')} nets, {META_FILE} "
                         f"{config.members}: refit it")
    nets = [make_net(config, spec)]
    for _ in range(config.members - 1):  # an ensemble's members share a frozen pretrained encoder
        nets.append(make_net(config, spec, encoder=nets[0].image_encoder if nets[0].frozen_encoder else None))
    net = nets[0] if len(nets) == 1 else ProgressEnsemble(nets)
    missing, unexpected = net.load_state_dict(weights["state_dict"], strict=False)
    # a frozen encoder loads from its source; a run fitted before the feature range was kept leaves it unknown
    missing = [k for k in missing if not (net.frozen_encoder and encoder_key(k)) and not k.endswith(RANGE_KEYS)]
    if missing or unexpected:
        raise ValueError(f"progress run {str(run)!r}: model.pt does not fit its config (missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]}): refit it")
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net, meta, spec


def config_of(meta: dict) -> ProgressConfig:
    fields = {f.name for f in dataclasses.fields(ProgressConfig)}
    values = {k: v for k, v in (meta.get("config") or {}).items() if k in fields}
    for key in ("demos", "negatives"):
        values[key] = tuple(values.get(key, ()))
    # runs fitted before these settings existed read the observation as it is and trained without mixing
    values["features"] = values.get("features") or OBSERVATION
    values.setdefault("mix_weight", 0.0)
    return ProgressConfig(**values)
