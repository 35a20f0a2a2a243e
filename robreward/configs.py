"""What every config dataclass shares (rl/config.py, feedback/preferences/config.py, codegen/config.py):
the error a bad field raises, strict construction from a dict, and the one-line docs of the fields.

Defaults and validation live in each dataclass (its field defaults and ``__post_init__``), nowhere
else: ``from_dict`` states no defaults of its own (old run directories are migrated to the current
schema by robreward/rundir/ before they reach it), and the CLI (robreward/cli/options.py) derives its
flags and their help from the fields and their docstrings, and reports a ConfigError with the flag's
name (``--seed must be >= 0, got -1``)."""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import textwrap


class ConfigError(ValueError):
    """A config field with a bad value. ``problem`` names the field as ``{name}`` (or the message starts
    with it): ``str(err)`` names the field ("seed must be >= 0, got -1"), ``err.named(flag)`` the flag the
    CLI derived from it ("--seed must be >= 0, got -1"). ``field`` is the dotted name ("ppo.learning_rate")."""

    def __init__(self, field: str, problem: str, what: str | None = None):
        self.field = field
        self.problem = problem if "{name}" in problem else "{name} " + problem
        self.what = what  # how the message names the field outside the CLI ("query selection")
        super().__init__(self.named(what or field))

    def named(self, name: str) -> str:
        return self.problem.replace("{name}", name)

    def within(self, parent: str) -> "ConfigError":
        """The same error for this config nested as field ``parent`` of another one."""
        return ConfigError(f"{parent}.{self.field}", self.problem, self.what and f"{parent}.{self.what}")


def check_choice(field: str, value, choices, what: str | None = None) -> None:
    if value not in choices:
        raise ConfigError(field, f"unknown {{name}} {value!r}: choose one of {', '.join(map(str, choices))}", what)


def check_number(field: str, value, ok, expected: str) -> None:
    """A real number (not a bool) for which ``ok(value)`` holds (so NaN fails any range), else the ConfigError
    "{field} must be {expected}, got {value!r}"."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not ok(value):
        raise ConfigError(field, f"must be {expected}, got {value!r}")


def check_min(field: str, value, low) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
        raise ConfigError(field, f"must be >= {low}, got {value!r}")


def strict_from_dict(cls, data: dict, where: str = "config"):
    """``cls(**data)`` refusing unknown fields by name (no defaults added: the dataclass has them)."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{where} has unknown fields {unknown}; valid fields: {', '.join(sorted(known))}")
    return cls(**data)


@functools.lru_cache(maxsize=None)
def field_docs(cls) -> dict[str, str]:
    """{field: its docstring} from the string literal under each field in the class body."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs = {}
    for node, after in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


__all__ = ["ConfigError", "check_choice", "check_min", "field_docs", "strict_from_dict"]
