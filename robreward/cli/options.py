"""CLI flags derived from the config dataclasses: one flag per field (nested configs as ``--ppo.FIELD``),
the help text from the field's docstring, the default from the dataclass, and ``--config FILE.yaml``.

    add_config_flags(parser, TrainConfig, flags={"num_envs": "--envs"})    # --envs, --ppo.learning-rate, ...
    values = given_values(args, TrainConfig)   # {"seed": 1, "ppo": {"learning_rate": 3e-4}}: given flags only
    config = build_config(TrainConfig, values, flags)     # a ConfigError is reported with its flag's name

Only flags the user gave reach the config (argparse.SUPPRESS), so the dataclass states every default."""

from __future__ import annotations

import argparse
import dataclasses
import typing

from robreward.configs import ConfigError, field_docs

DEST_SEP = "__"  # argparse dest of --ppo.learning-rate: ppo__learning_rate


def _flag(path: str, flags: dict) -> str:
    return flags.get(path) or "--" + path.replace("_", "-")


def flag_for(field: str, flags: dict) -> str:
    """The flag of a dotted field name (the reverse of the derivation), for error messages."""
    return _flag(field, flags)


def _plain(annotation):
    """(type, is_optional) of a field annotation: Optional[int] -> (int, True)."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        inner = [a for a in args if a is not type(None)]
        return (inner[0] if len(inner) == 1 else str), type(None) in args
    return annotation, False


def _sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected layer sizes like 128,128, got {text!r}") from None


def add_config_flags(parser, cls, flags: dict | None = None, prefix: str = "", skip=(), group=None,
                     nested_titles: dict | None = None, help_overrides: dict | None = None) -> None:
    """One flag per field of ``cls`` (recursively for nested config dataclasses, as --NAME.FIELD).
    help_overrides: {field path: help} where the CLI's meaning differs from the field's docstring."""
    flags = flags or {}
    help_overrides = help_overrides or {}
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    target = group or parser
    for field in dataclasses.fields(cls):
        path = f"{prefix}{field.name}"
        if path in skip:
            continue
        kind, optional = _plain(hints[field.name])
        if dataclasses.is_dataclass(kind):
            title = (nested_titles or {}).get(path, f"{path} (--{path}.FIELD)")
            add_config_flags(parser, kind, flags, prefix=f"{path}.", skip=skip,
                             group=parser.add_argument_group(title), nested_titles=nested_titles,
                             help_overrides=help_overrides)
            continue
        default = field.default if field.default is not dataclasses.MISSING else None
        help_text = help_overrides.get(path, docs.get(field.name, ""))
        if path not in help_overrides and default not in (None, "", ()) and "default" not in help_text:
            help_text += f" (default {default})"
        names = [_flag(path, flags)]
        if path in flags and flags[path] != "--" + path.replace("_", "-"):
            names.append("--" + path.replace("_", "-"))  # the derived name works too
        dest = path.replace(".", DEST_SEP)
        common = dict(dest=dest, default=argparse.SUPPRESS, help=help_text.replace("%", "%%"))
        if kind is bool:
            target.add_argument(*names, action=argparse.BooleanOptionalAction, **common)
        elif typing.get_origin(kind) is tuple:
            target.add_argument(*names, type=_sizes, metavar="N,N", **common)
        else:
            target.add_argument(*names, type=kind if kind in (int, float) else str,
                                metavar=names[0].split(".")[-1].lstrip("-").replace("-", "_").upper(), **common)


def given_values(args: argparse.Namespace, cls, prefix: str = "") -> dict:
    """The fields whose flags were given, as a nested dict (nested configs as sub-dicts)."""
    hints = typing.get_type_hints(cls)
    out: dict = {}
    for field in dataclasses.fields(cls):
        path = f"{prefix}{field.name}"
        kind, _ = _plain(hints[field.name])
        if dataclasses.is_dataclass(kind):
            nested = given_values(args, kind, prefix=f"{path}.")
            if nested:
                out[field.name] = nested
        elif hasattr(args, path.replace(".", DEST_SEP)):
            out[field.name] = getattr(args, path.replace(".", DEST_SEP))
    return out


def merge(base: dict, override: dict) -> dict:
    """``override`` over ``base``, nested dicts merged field by field."""
    out = dict(base)
    for key, value in override.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def read_config_file(path: str, what: str = "--config") -> dict:
    """A YAML (or JSON) mapping of config fields."""
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except yaml.YAMLError as err:
        raise ValueError(f"{what} {path!r} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{what} {path!r} must hold a mapping of config fields (as a run's config.yaml does)")
    if "schema_version" in data:  # a run's config.yaml: brought to the current schema by its migrations
        from robreward.rundir import migrate_config

        return migrate_config(data, f"{what} {path!r}")
    return data  # a hand-written file: fields of the current schema (one without schema_version)


def build_config(cls, values: dict, flags: dict | None = None, from_dict=None):
    """``cls`` from ``values`` (through ``from_dict`` when given); a bad field is reported by its flag."""
    from robreward.cli.main import CliError

    try:
        return from_dict(values) if from_dict else cls(**values)
    except ConfigError as err:
        raise CliError(err.named(flag_for(err.field, flags or {}))) from None
    except (TypeError, ValueError) as err:
        raise CliError(str(err)) from None


__all__ = ["add_config_flags", "build_config", "flag_for", "given_values", "merge", "read_config_file"]
