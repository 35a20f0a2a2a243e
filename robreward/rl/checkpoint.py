"""Checkpoints as plain data: tensors, dicts, lists and numbers only, written atomically and read
with ``torch.load(weights_only=True)``, so a checkpoint from someone else cannot run code.

Checkpoints written before the RNG states were plain data hold numpy arrays (np.random.get_state());
they still load, through an allow-list of exactly numpy's array reconstruction, the array class and
dtype (torch.serialization.safe_globals), never through weights_only=False.
"""

from __future__ import annotations

import random

import numpy as np
import torch

# the checkpoint files themselves belong to the run directory's contract (robreward.rundir)
from robreward.rundir import atomic_torch_save, load_checkpoint, load_plain  # noqa: F401  (re-exported)


def rng_state() -> dict:
    """Python's, numpy's and torch's global RNG states as plain data (lists, tensors, numbers)."""
    version, internal, gauss_next = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"python": {"version": version, "state": list(internal), "gauss_next": gauss_next},
            "numpy": {"name": str(name), "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
            "torch": torch.get_rng_state()}


def restore_rng(state: dict) -> None:
    """The inverse of rng_state (also of the tuples/arrays that checkpoints held before it)."""
    py, npy = state["python"], state["numpy"]
    if isinstance(py, dict):
        py = (int(py["version"]), tuple(int(x) for x in py["state"]), py["gauss_next"])
    random.setstate(py)
    if isinstance(npy, dict):
        keys = np.asarray(npy["keys"].numpy() if isinstance(npy["keys"], torch.Tensor) else npy["keys"])
        npy = (npy["name"], keys.astype(np.uint32), int(npy["pos"]), int(npy["has_gauss"]),
               float(npy["cached_gaussian"]))
    np.random.set_state(npy)
    torch.set_rng_state(state["torch"])


__all__ = ["atomic_torch_save", "load_checkpoint", "load_plain", "restore_rng", "rng_state"]
