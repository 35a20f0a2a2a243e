"""Lazy package attributes (PEP 562): a package names where each public name lives, and the module
is imported the first time the name is used, so importing the package stays light."""

from __future__ import annotations

import importlib


def lazy_attributes(package: str, table: dict[str, str], namespace: dict):
    """A module ``__getattr__`` for `package` that imports ``table[name]`` on first use and keeps
    the value in `namespace` (the package's globals), so later lookups cost nothing."""

    def __getattr__(name: str):
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return __getattr__
