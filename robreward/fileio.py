"""Atomic file writes: a temp file in the target's folder, then os.replace, so a reader (or a
resumed run after a crash) sees the old file or the new one, never half of one.

Every file robreward writes goes through :func:`atomic_path` (the one ``os.replace`` of the
package): the writers that need a real path (torch.save, the ONNX exporter, matplotlib, video
and HDF5 writers) write to the temp path it yields; the others use the ``atomic_write_*`` helpers."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator


def _builtin(obj):
    """json.dumps fallback: numpy/torch scalars as Python numbers, anything else as its str."""
    item = getattr(obj, "item", None)
    if callable(item) and getattr(obj, "ndim", 1) == 0:
        return item()
    return str(obj)


@contextlib.contextmanager
def atomic_path(path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temp path beside ``path``; when the block ends without an error it replaces ``path``
    atomically, otherwise it is deleted. ``suffix``: the temp file's ending (default: the target's,
    for writers that pick a format by file name). Creates the parent folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + (path.suffix if suffix is None else suffix),
                               dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write `data` to `path` atomically; creates the parent folder. Returns the path."""
    path = Path(path)
    with atomic_path(path, suffix="") as tmp:
        tmp.write_bytes(data)
    return path


def atomic_write_text(path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically; creates the parent folder. Returns the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj, *, indent: int = 1, sort_keys: bool = False, allow_nan: bool = True) -> Path:
    """Write `obj` as JSON (numpy/torch scalars as numbers, other objects as strings) atomically."""
    text = json.dumps(obj, indent=indent, sort_keys=sort_keys, ensure_ascii=False, default=_builtin,
                      allow_nan=allow_nan)
    return atomic_write_text(path, text + "\n")


def atomic_copy(source, path) -> Path:
    """Copy the file ``source`` to ``path`` atomically."""
    import shutil

    path = Path(path)
    with atomic_path(path) as tmp:
        shutil.copyfile(source, tmp)
    return path
