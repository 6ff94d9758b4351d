"""Configuration of the main job: a flat TOML file whose keys are the workflow's arguments.

Every key of the file is a keyword argument of :func:`brainexpr.workflows.run.run_main`;
unknown keys are an error that lists the allowed ones. Defaults follow the reference
study (Yu et al.): its AD genes, the regional Desikan-Killiany table, AD tau.
"""

from __future__ import annotations

import inspect
import tomllib
from pathlib import Path

from ..errors import InputError


def load_config(path, allowed: dict) -> dict:
    """Read a TOML config and check its keys against a workflow's parameters.

    Parameters
    ----------
    path : path-like
        A ``.toml`` file with flat ``key = value`` lines.
    allowed : dict
        Parameter name -> default value (from :func:`workflow_defaults`).

    Returns
    -------
    dict
        The keys and values of the file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"config file {path} does not exist")
    try:
        with open(path, "rb") as handle:
            config = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"config file {path} is not valid TOML: {exc}") from None
    nested = [k for k, v in config.items() if isinstance(v, dict)]
    if nested:
        raise InputError(f"config file {path} must be flat key = value lines; found tables {nested}")
    unknown = sorted(set(config) - set(allowed))
    if unknown:
        raise InputError(
            f"unknown config keys {unknown} in {path}; allowed keys: {', '.join(sorted(allowed))}"
        )
    for key, value in config.items():
        default = allowed[key]
        if default is not None and not _compatible(value, default):
            raise InputError(
                f"config key {key!r} in {path} should be like {default!r} "
                f"({type(default).__name__}), got {value!r}"
            )
    return config


def _compatible(value, default) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, (int, float)):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    if isinstance(default, str):
        return isinstance(value, (str, list))
    return True


def workflow_defaults(func) -> dict:
    """Return the keyword-only parameters of a workflow with their defaults."""
    return {
        name: param.default
        for name, param in inspect.signature(func).parameters.items()
        if param.kind is inspect.Parameter.KEYWORD_ONLY
    }


def write_config(path, values: dict) -> None:
    """Write a flat TOML file (strings, numbers, booleans, lists of those, None skipped)."""
    lines = []
    for key, value in values.items():
        if value is None:
            continue
        lines.append(f"{key} = {_toml_value(value)}")
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'
