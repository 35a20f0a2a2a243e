"""The README's baselines table is what scripts/baselines.py --table prints from the shipped policies/
(so a retrained or republished baseline cannot leave the README's numbers behind)."""

import re
from pathlib import Path

from tests.conftest import load_script

ROOT = Path(__file__).resolve().parents[2]


def test_readme_baselines_table_is_the_shipped_one():
    baselines = load_script("scripts/baselines.py", "baselines_script")
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- baselines: scripts/baselines.py --version (v\d+) --table -->\n(.*?)\n<!-- /baselines -->",
                      readme, re.S)
    assert match, "README.md lost its baselines table markers"
    version, shown = match.groups()
    assert shown.strip() == baselines.table(version, ROOT / "policies").strip()
    assert "not trained yet" not in shown
