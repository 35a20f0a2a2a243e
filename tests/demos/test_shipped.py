"""The datasets shipped in demos/ match the current tasks and replay bit-exactly (if this fails
after a scene changed, remake them with the commands in demos/README.md)."""

from pathlib import Path

import pytest

from robreward.demos.format import DemoDataset
from robreward.demos.replay import replay

SHIPPED = sorted((Path(__file__).resolve().parents[2] / "demos").glob("*.h5"))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_dataset_replays_bit_exactly(path):
    assert path.stat().st_size < 1_000_000
    with DemoDataset(path, task="auto") as ds:
        assert len(ds) == 20 and ds.attrs["source"] == "expert"
    result = replay(path, progress=False)
    assert result["diverged"] == 0 and result["max_abs_error"] == 0.0


def test_all_four_tasks_shipped():
    names = {p.name for p in SHIPPED}
    for task in ("reach", "push", "lift", "drawer-open"):
        assert {f"{task}-expert.h5", f"{task}-noisy.h5"} <= names
