"""Small helpers shared by the CLI verbs."""

from __future__ import annotations

import json
import sys


def parse_seeds(text: str) -> list[int]:
    """'0,1,2' or '0-4' -> list of ints."""
    try:
        if "-" in text and "," not in text:
            lo, hi = text.split("-")
            return list(range(int(lo), int(hi) + 1))
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--seeds must look like 0,1,2 or 0-4, got {text!r}") from None


def print_json(obj) -> None:
    json.dump(obj, sys.stdout, indent=2)
    sys.stdout.write("\n")
