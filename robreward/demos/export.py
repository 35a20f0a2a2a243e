"""Export a dataset for the Gymnasium ecosystem: a Minari dataset (``minari.load_dataset``).

Observations are the task observations stored in the file (obs [T+1, obs_dim]); rewards the
task's hand reward; infos carry the per-step success flag. The dataset lands where Minari
keeps datasets (``MINARI_DATASETS_PATH``, default ~/.minari/datasets).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from robreward.demos.format import DemoDataset

FORMATS = ("minari",)


def default_dataset_id(task: str, path) -> str:
    """'robreward/<task>/<file stem>-v0', as Minari spells ids (namespace/env/name-vN)."""
    stem = re.sub(r"[^A-Za-z0-9_]+", "_", Path(path).stem.replace(task, "").strip("-_ ")) or "demos"
    return f"robreward/{task}/{stem}-v0"


def export(path, fmt: str = "minari", name: str | None = None, force: bool = False, overwrite: bool = False,
           task=None) -> dict:
    """Export `path` as a dataset of format `fmt`; returns {"format", "dataset_id", "episodes", "location"}.

    task: None for the file's own task (a task of the suite only), or the task the caller chose
    (e.g. ``--task FOLDER``), which the file's task name must match."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}")
    try:
        import minari
        from minari.data_collector import EpisodeBuffer
    except ImportError as err:
        raise ValueError(f"--format minari needs the minari package (pip install minari): {err}") from None
    import gymnasium
    from gymnasium import spaces

    with DemoDataset(path, task=task or "auto", force=force) as ds:
        spec = ds.spec
        dataset_id = name or default_dataset_id(spec.name, path)
        if "/" not in dataset_id or not re.search(r"-v\d+$", dataset_id):
            dataset_id = f"robreward/{spec.name}/{dataset_id.strip('/')}"
            dataset_id = dataset_id if re.search(r"-v\d+$", dataset_id) else dataset_id + "-v0"
        if dataset_id in minari.list_local_datasets():
            if not overwrite:
                raise ValueError(f"a Minari dataset {dataset_id!r} exists already; pass --name NAME or --overwrite")
            minari.delete_dataset(dataset_id)
        buffers = []
        for i in range(len(ds)):
            ep = ds.episode(i, fields=("obs", "actions", "rewards", "success"))
            T = len(ep["actions"])
            term = np.zeros(T, bool)
            trunc = np.zeros(T, bool)
            if ep["attrs"].get("terminated"):
                term[-1] = True
            else:
                trunc[-1] = True
            buffers.append(EpisodeBuffer(
                id=i, seed=int(ep["attrs"].get("seed", 0)),
                observations=list(ep["obs"].astype(np.float32)), actions=list(ep["actions"].astype(np.float32)),
                rewards=[float(r) for r in ep["rewards"]], terminations=term.tolist(), truncations=trunc.tolist(),
                infos={"success": np.concatenate([[False], ep["success"].astype(bool)])}))
        obs_space = spaces.Box(-np.inf, np.inf, shape=(spec.obs_dim,), dtype=np.float32)
        act_space = spaces.Box(np.asarray(spec.action_low, np.float32), np.asarray(spec.action_high, np.float32),
                               dtype=np.float32)
        env_id = f"robreward/{spec.name}-v0"
        env_spec = gymnasium.spec(env_id) if env_id in gymnasium.registry else None
        attrs = ds.attrs
        description = (f"robreward demonstrations of task {spec.name} v{spec.version} from {attrs.get('source')} "
                       f"({len(ds)} episodes, MuJoCo {attrs.get('mujoco_version')}, model {attrs.get('model_hash', '')[:12]}); "
                       f"exported from {Path(path).name}. Observations: the task observation; rewards: the hand reward.")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*(author_email|code_permalink).*")
            dataset = minari.create_dataset_from_buffers(
                dataset_id=dataset_id, buffer=buffers, env=env_spec, eval_env=env_spec, observation_space=obs_space,
                action_space=act_space, algorithm_name=str(attrs.get("source")), author="robreward",
                description=description)
    return {"format": fmt, "dataset_id": dataset_id, "episodes": len(buffers),
            "location": str(Path(dataset.spec.data_path).parent) if hasattr(dataset, "spec") else None}
