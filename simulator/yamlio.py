"""Reading user YAML files: safe loading, scientific notation, clear errors."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from simulator.errors import ConfigError


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e9`` and ``8e-12`` as floats (YAML 1.1 wants a dot
    and a signed exponent)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file; any problem is a :class:`ConfigError` naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(
            str(path), f"cannot read file ({getattr(e, 'strerror', None) or e})"
        ) from None
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(str(path), f"not valid YAML{where}: {getattr(e, 'problem', e)}") from None
