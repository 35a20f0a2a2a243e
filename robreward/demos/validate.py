"""Checks a demo file passes before any of its data is read (docs/architecture.md "Everything from
outside is untrusted").

A demo dataset comes from someone else as often as from this machine. HDF5 can make a dataset
read its bytes from other files (external storage, external links, virtual datasets), and a
small file can declare a shape of many gigabytes that HDF5 fills with zeros on read. So a file
is opened only after:

- ``check_storage``: every object is reached by a hard link, every dataset keeps its bytes in
  this file (no external storage, no virtual dataset), uses only the filters the writer uses,
  has a numeric dtype, and declares no more bytes than the file can hold;
- ``check_layout``: every episode has the datasets of the format with the shapes its length
  and the file's sizes (nq, nv, nstate, obs_dim, act_dim) imply;

and every episode read is checked by ``check_finite`` (non-finite data is named by episode,
field and step). The messages name the object and say what to do.
"""

from __future__ import annotations

import math

import h5py
import numpy as np



class DemoFileError(ValueError):
    """A dataset that cannot be read or does not match what it is used with."""


# deflate, shuffle, fletcher32 (the writer uses deflate for frames) and h5py's lzf
ALLOWED_FILTERS = {h5py.h5z.FILTER_DEFLATE: "gzip", h5py.h5z.FILTER_SHUFFLE: "shuffle",
                   h5py.h5z.FILTER_FLETCHER32: "fletcher32", 32000: "lzf"}
DEFLATE_MAX_RATIO = 1100  # deflate cannot expand data by more than ~1032x
MAX_SIZE_ATTR = 1_000_000  # nq, nv, nstate, obs_dim, act_dim
MAX_EPISODE_LENGTH = 10_000_000
MAX_FRAME_SIDE = 8192
MAX_MODEL_FIELD_ELEMENTS = 10_000_000
SIZE_ATTRS = ("nq", "nv", "nstate", "obs_dim", "act_dim")


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n:,} bytes"


def check_storage(f: h5py.File, path, file_size: int) -> None:
    """Walk the whole file by its links (never following a soft or external one) and refuse
    links, external storage, virtual datasets, unknown filters, non-numeric dtypes and
    declared sizes the file cannot hold. Reads metadata only."""
    seen: set = set()
    stored = [0]

    def walk(group: h5py.Group, where: str) -> None:
        for name in group:
            full = f"{where.rstrip('/')}/{name}"
            try:
                link = group.get(name, getlink=True)
            except Exception as err:  # noqa: BLE001 - a user-defined link class h5py cannot decode
                raise DemoFileError(f"{path}: {full} is a link of an unknown kind ({err}); "
                                    "a demo dataset holds no links: refusing to read it") from None
            if isinstance(link, h5py.ExternalLink):
                raise DemoFileError(
                    f"{path}: {full} is an external link to {link.filename!r}:{link.path}; a demo dataset "
                    "never points into other files: refusing to read it (re-record the dataset)")
            if isinstance(link, h5py.SoftLink):
                raise DemoFileError(f"{path}: {full} is a soft link to {link.path!r}; a demo dataset holds "
                                    "no links: refusing to read it (re-record the dataset)")
            if not isinstance(link, h5py.HardLink):
                raise DemoFileError(f"{path}: {full} is a {type(link).__name__}, not a plain group or dataset: "
                                    "refusing to read it")
            obj = group[name]
            if obj.id in seen:
                raise DemoFileError(f"{path}: {full} is a second name for an object seen before; a demo "
                                    "dataset stores every array once: refusing to read it")
            seen.add(obj.id)
            if isinstance(obj, h5py.Group):
                walk(obj, full)
            elif isinstance(obj, h5py.Dataset):
                stored[0] += _check_dataset(obj, full, path, file_size)
            else:
                raise DemoFileError(f"{path}: {full} is a named datatype or another non-data object: "
                                    "refusing to read the file")

    walk(f, "/")
    if stored[0] > file_size:
        raise DemoFileError(f"{path}: its datasets claim {_gib(stored[0])} of storage, the file has "
                            f"{_gib(file_size)}: the file is corrupted or crafted")


def _check_dataset(ds: h5py.Dataset, full: str, path, file_size: int) -> int:
    """Refuse what would read outside this file or allocate more than it holds; returns the
    bytes the dataset stores in the file."""
    if ds.is_virtual:
        sources = sorted({s.file_name for s in ds.virtual_sources()})
        raise DemoFileError(f"{path}: {full} is a virtual dataset reading from {', '.join(map(repr, sources))}; "
                            "a demo dataset keeps its data in the file itself: refusing to read it")
    if ds.external:
        files = sorted({str(e[0]) for e in ds.external})
        raise DemoFileError(f"{path}: {full} keeps its data in external file(s) {', '.join(map(repr, files))}; "
                            "a demo dataset keeps its data in the file itself: refusing to read it")
    if ds.dtype.kind not in "biuf" or ds.dtype.subdtype is not None:
        raise DemoFileError(f"{path}: {full} has dtype {ds.dtype}, not a plain number type: refusing to read it")
    plist = ds.id.get_create_plist()
    filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    unknown = [code for code in filters if code not in ALLOWED_FILTERS]
    if unknown:
        raise DemoFileError(f"{path}: {full} needs HDF5 filter(s) {unknown}; demo datasets use only "
                            f"{', '.join(sorted(ALLOWED_FILTERS.values()))}: refusing to load filter plugins")
    declared = int(np.prod(ds.shape, dtype=object)) * ds.dtype.itemsize if ds.shape else ds.dtype.itemsize
    storage = int(ds.id.get_storage_size())
    compressed = any(code in (h5py.h5z.FILTER_DEFLATE, 32000) for code in filters)
    limit = storage * DEFLATE_MAX_RATIO if compressed else storage
    if declared > limit or (not compressed and declared > file_size):
        raise DemoFileError(
            f"{path}: {full} declares shape {ds.shape} ({_gib(declared)}) but stores {_gib(storage)} in a "
            f"file of {_gib(file_size)}: the file is truncated or crafted; refusing to read it")
    return storage


def _int_attr(attrs: dict, key: str, low: int, high: int, where: str) -> int:
    value = attrs.get(key)
    value = value.item() if isinstance(value, np.generic) else value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise DemoFileError(f"{where}: attribute {key}={value!r} must be an integer in [{low}, {high}]: "
                            "the file is corrupted or crafted")
    return int(value)


def check_layout(f: h5py.File, attrs: dict, path) -> dict:
    """Every episode's datasets against its length and the file's sizes; returns the sizes."""
    sizes = {k: _int_attr(attrs, k, 1, MAX_SIZE_ATTR, str(path)) for k in SIZE_ATTRS}
    max_len = _int_attr(attrs, "episode_length", 1, MAX_EPISODE_LENGTH, str(path))
    episodes = f["episodes"]
    if not isinstance(episodes, h5py.Group):
        raise DemoFileError(f"{path}: /episodes is not a group: the file is corrupted or crafted")
    for name in episodes:
        _check_episode(episodes[name], f"{path}, episode {name}", sizes, max_len)
    return sizes


def _expected(sizes: dict, length: int) -> dict:
    return {
        "initial_state": ((sizes["nstate"],), "f"), "actions": ((length, sizes["act_dim"]), "f"),
        "qpos": ((length + 1, sizes["nq"]), "f"), "qvel": ((length + 1, sizes["nv"]), "f"),
        "obs": ((length + 1, sizes["obs_dim"]), "f"), "rewards": ((length,), "f"), "success": ((length,), "biu"),
    }


def _check_episode(g, where: str, sizes: dict, max_len: int) -> None:
    if not isinstance(g, h5py.Group):
        raise DemoFileError(f"{where} is not a group: the file is corrupted or crafted")
    length = _int_attr({k: v for k, v in g.attrs.items()}, "length", 1, max_len, where)
    expected = _expected(sizes, length)
    for key in g:
        item = g[key]
        if key in expected:
            shape, kinds = expected[key]
            _shape(item, shape, kinds, f"{where}: {key}", length)
        elif key == "reward_terms" and isinstance(item, h5py.Group):
            for term in item:
                _shape(item[term], (length,), "f", f"{where}: reward_terms/{term}", length)
        elif key == "model_fields" and isinstance(item, h5py.Group):
            for field in item:
                ds = item[field]
                if not isinstance(ds, h5py.Dataset) or math.prod(ds.shape) > MAX_MODEL_FIELD_ELEMENTS:
                    raise DemoFileError(f"{where}: model_fields/{field} is not an array of at most "
                                        f"{MAX_MODEL_FIELD_ELEMENTS:,} numbers")
        elif key == "frames" and isinstance(item, h5py.Dataset):
            ok = (item.ndim == 4 and item.shape[0] == length + 1 and item.shape[3] == 3 and item.dtype == np.uint8
                  and 1 <= item.shape[1] <= MAX_FRAME_SIDE and 1 <= item.shape[2] <= MAX_FRAME_SIDE)
            if not ok:
                raise DemoFileError(f"{where}: frames has shape {item.shape} {item.dtype}, expected "
                                    f"[{length + 1}, H, W, 3] uint8")
        else:
            raise DemoFileError(f"{where}: unexpected {key!r} (a {type(item).__name__}); the format has "
                                f"{', '.join(sorted(expected))}, reward_terms/, model_fields/ and frames")
    missing = sorted(set(expected) - set(g))
    if missing:
        raise DemoFileError(f"{where} lacks {', '.join(missing)}: the file is incomplete")


def _shape(item, shape: tuple, kinds: str, where: str, length: int) -> None:
    if not isinstance(item, h5py.Dataset):
        raise DemoFileError(f"{where} is a {type(item).__name__}, expected a dataset")
    if tuple(item.shape) != shape or item.dtype.kind not in kinds:
        raise DemoFileError(f"{where} has shape {tuple(item.shape)} {item.dtype}, expected {list(shape)} "
                            f"({'float' if kinds == 'f' else 'bool'}) for an episode of length {length} with "
                            "the file's sizes: the file is corrupted or crafted")


def check_finite(arrays: dict, where: str) -> None:
    """Refuse NaN/inf in an episode's float arrays, naming the field and the step (row)."""
    for key, value in arrays.items():
        if isinstance(value, dict):
            check_finite({f"{key}/{k}": v for k, v in value.items()}, where)
            continue
        if key == "attrs" or not isinstance(value, np.ndarray) or value.dtype.kind != "f":
            continue
        bad = ~np.isfinite(value)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            per_step = value.ndim and key != "initial_state" and not key.startswith("model_fields/")
            at = f"step {first[0]}" if per_step else f"index {first}"
            raise DemoFileError(
                f"{where}: {key} is not finite at {at} (value {value[first]}); non-finite demo data would "
                "poison training and replay: drop this episode or re-record the dataset")
