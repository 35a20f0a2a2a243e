"""Checkpoints as plain data: tensors, dicts, lists and numbers only, written atomically and read
with ``torch.load(weights_only=True)``, so a checkpoint from someone else cannot run code.

Checkpoints written before the RNG states were plain data hold numpy arrays (np.random.get_state());
they still load, through an allow-list of exactly numpy's array reconstruction, the array class and
dtype (torch.serialization.safe_globals), never through weights_only=False.
"""

from __future__ import annotations

import os
import pickle
import random
from pathlib import Path

import numpy as np
import torch


def atomic_torch_save(obj, path: Path) -> None:
    """torch.save to a temporary file, then an atomic rename: a killed writer never leaves half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _legacy_numpy_globals() -> list:
    """What a checkpoint written before the RNG states were plain data needs beyond weights_only's
    defaults: numpy's array reconstruction (under numpy 2's and numpy 1's module name), the array
    class, and the dtype classes of plain numbers (numpy 2 pickles a dtype as its class, e.g.
    numpy.dtypes.UInt32DType). No object dtype, nothing that can call other code."""
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct
    number_dtypes = sorted({type(np.dtype(code)) for code in "?bBhHiIlLqQefdgFDG"}, key=str)
    return [np.ndarray, np.dtype, *number_dtypes, (_reconstruct, "numpy._core.multiarray._reconstruct"),
            (_reconstruct, "numpy.core.multiarray._reconstruct")]


def _unpickler_reason(err: Exception) -> str:
    """The one line of torch's weights_only error that says what the file holds."""
    text = str(err)
    marker = "WeightsUnpickler error:"
    if marker in text:
        text = text.split(marker, 1)[1].strip()
    return text.split(". ")[0].split("\n")[0].strip()[:300]


def load_checkpoint(path: str | os.PathLike) -> dict:
    """A run's checkpoint as plain data (torch.load with weights_only=True; never unpickles code)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}: the run was killed before its first checkpoint; "
                                "start it again without --resume")
    ckpt = load_plain(path)
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise ValueError(f"{str(path)!r} is not a robreward checkpoint (no 'model' entry): pass a run's "
                         "checkpoints/latest.pt")
    return ckpt


def load_plain(path: str | os.PathLike):
    """torch.load(weights_only=True) of a file that must hold only tensors, dicts, lists and numbers
    (numpy arrays too, for checkpoints written before they were plain data); ValueError otherwise."""
    path = Path(path)
    try:
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as first:  # written before the RNG states were plain data: numpy arrays
            if not hasattr(torch.serialization, "safe_globals"):
                raise ValueError(f"checkpoint {str(path)!r} was written by an older robreward (numpy arrays in it): "
                                 "loading it safely needs torch >= 2.5; upgrade torch, or start the run again") from first
            with torch.serialization.safe_globals(_legacy_numpy_globals()):
                ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(f"refusing to load checkpoint {str(path)!r}: it holds more than tensors, dicts, lists and "
                         f"numbers ({_unpickler_reason(err)}), and loading it could run code. Use checkpoints "
                         "written by robreward, and only from people you trust") from None
    except ValueError:
        raise
    except Exception as err:
        raise ValueError(f"cannot read checkpoint {str(path)!r} ({type(err).__name__}: {err})") from err
    return ckpt


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
