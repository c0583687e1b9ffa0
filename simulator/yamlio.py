"""Reading user YAML files: safe loading, scientific notation, bounded work, clear errors.

:func:`read_yaml` is the one reader of every user-written YAML file (hardware
profiles, model files, ``--levels`` and ``--mapping`` files). It bounds the work a
hostile file can cause:

- only regular files are read (a FIFO, ``/dev/zero`` or a folder is refused before
  anything is read), and at most :data:`MAX_YAML_BYTES`;
- **aliases are refused** (``*name``): PyYAML expands them while building the data,
  so ten lines of nested aliases ("billion laughs") take minutes and gigabytes, and
  ``&m [*m]`` builds a structure that contains itself. No file prunesim reads needs
  them (profiles share fields with ``extends:``), and refusing the first alias costs
  nothing, where capping the expansion would still build large shared structures;
- at most :data:`MAX_YAML_NODES` nodes nested at most :data:`MAX_YAML_DEPTH` deep;
- integers must satisfy ``|n| < 2**63`` (Python refuses int<->str beyond 4,300
  digits, and numba and float conversion break on huge ones), floats must be finite,
  and every mapping key must be text.

Every problem is a :class:`ConfigError` naming the file, and the key path or the
line and column; values from the file are printed through :func:`shown`.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    ScalarEvent,
)

from simulator.errors import ConfigError, shown

MAX_YAML_BYTES = 2 * 2**20
"""Largest YAML file read (bytes). Model files and profiles are a few kilobytes (BERT-base:
11 KB); PyYAML's pure-Python parser reads about 1 MB/s here."""
MAX_YAML_NODES = 50_000
"""Most YAML nodes (scalars, lists, mappings) in one file, 45 times BERT-base's; bounds
the parser's time (about 20,000 nodes/s here) and memory."""
MAX_YAML_DEPTH = 64
"""Deepest nesting of lists and mappings."""
INT_LIMIT = 2**63
"""Integers read from files must have an absolute value below this."""
_INT_TEXT_LIMIT = 80  # characters of an integer literal worth converting at all


class _Refused(yaml.MarkedYAMLError):
    """Raised by the loader for input it refuses (alias, too many nodes, too deep)."""


class _HugeInt:
    """Stands in for an integer literal too long to convert; reported with its key path."""

    def __init__(self, text: str):
        self.digits = sum(c.isdigit() for c in text)


def _refusal(nodes: int, depth: int) -> str | None:
    """Why a file is refused once it has ``nodes`` nodes and one ``depth`` deep."""
    if nodes > MAX_YAML_NODES:
        return f"file refused: more than {MAX_YAML_NODES:,} values"
    if depth > MAX_YAML_DEPTH:
        return f"file refused: nested more than {MAX_YAML_DEPTH} levels deep"
    return None


def _alias_refused(event: Any) -> _Refused:
    return _Refused(
        None,
        None,
        f"alias *{shown(event.anchor, 40)} refused (aliases are not allowed: "
        "write the value out, or use extends: in a hardware profile)",
        event.start_mark,
    )


def _construct_int(loader: Any, node: Any) -> Any:
    if len(node.value) > _INT_TEXT_LIMIT:
        return _HugeInt(node.value)
    return yaml.SafeLoader.construct_yaml_int(loader, node)


_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
"""Floats as YAML 1.2 writes them: ``1e9`` and ``8e-12`` too (YAML 1.1 wants a dot
and a signed exponent)."""


class _Loader(yaml.SafeLoader):
    """Pure-Python SafeLoader that also reads ``1e9`` as a float, refuses aliases and
    bounds nodes and depth while composing (used where PyYAML lacks libyaml)."""

    def __init__(self, stream: Any):
        super().__init__(stream)
        self._nodes = 0
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(AliasEvent):
            raise _alias_refused(self.peek_event())
        self._nodes += 1
        self._depth += 1
        try:
            why = _refusal(self._nodes, self._depth)
            if why:
                raise _Refused(None, None, why, self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_CLoader: Any = None
if getattr(yaml, "__with_libyaml__", False):

    class _CLoader(yaml.CSafeLoader):  # type: ignore[no-redef]
        """libyaml's SafeLoader (about 10 times faster) with the same int and float
        rules; its composer runs in C, so :func:`_check_events` applies the bounds
        to the event stream before anything is composed."""


for _cls in (_Loader, _CLoader):
    if _cls is not None:
        _cls.add_constructor("tag:yaml.org,2002:int", _construct_int)
        _cls.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def _check_events(text: str) -> None:
    """Refuse aliases and too many or too deeply nested nodes from libyaml's event
    stream, before the C composer builds (and would expand) anything. Counts exactly
    as :meth:`_Loader.compose_node` does: every scalar and collection is a node, one
    level deeper than the collections around it."""
    nodes = open_collections = 0
    for event in yaml.parse(text, Loader=_CLoader):
        if isinstance(event, AliasEvent):
            raise _alias_refused(event)
        if isinstance(event, CollectionEndEvent):
            open_collections -= 1
            continue
        if not isinstance(event, ScalarEvent | CollectionStartEvent):
            continue
        nodes += 1
        why = _refusal(nodes, open_collections + 1)
        if why:
            raise _Refused(None, None, why, event.start_mark)
        if isinstance(event, CollectionStartEvent):
            open_collections += 1


def key_path(parts: Any) -> str:
    """``("memory", 1, "size_bytes")`` -> ``memory[1].size_bytes`` (keys through
    :func:`shown`); the empty path is ``(top level)``."""
    out = ""
    for p in parts:
        if isinstance(p, int) and not isinstance(p, bool):
            out += f"[{p}]"
        else:
            out += f".{shown(p, 40)}" if out else shown(p, 40)
    return out or "(top level)"


def value_problems(data: Any, where: tuple = (), out: list[str] | None = None) -> list[str]:
    """Problems of values read from a file, each led by its key path: integers with
    ``|n| >= 2**63``, NaN or infinite floats, keys that are not text (at most 20)."""
    out = [] if out is None else out
    if len(out) >= 20:
        return out
    if isinstance(data, dict):
        for k, v in data.items():
            if not isinstance(k, str):
                what = "an empty key (null)" if k is None else f"the key {shown(k, 40)}"
                out.append(
                    f"{key_path(where)}: {what} is not text; keys must be names "
                    "(quote them: '1': ...)"
                )
                k = shown(k, 40)
            value_problems(v, (*where, k), out)
    elif isinstance(data, list | tuple):
        for i, v in enumerate(data):
            value_problems(v, (*where, i), out)
    elif isinstance(data, _HugeInt):
        out.append(f"{key_path(where)}: integer of {data.digits:,} digits; expected |n| < 2**63")
    elif isinstance(data, int) and not isinstance(data, bool) and abs(data) >= INT_LIMIT:
        out.append(
            f"{key_path(where)}: integer of {data.bit_length()} bits is too large; "
            "expected |n| < 2**63"
        )
    elif isinstance(data, float) and not math.isfinite(data):
        out.append(f"{key_path(where)}: expected a finite number, got {data}")
    return out


def read_text_bounded(path: str | Path, max_bytes: int = MAX_YAML_BYTES) -> str:
    """The UTF-8 text of a regular file of at most ``max_bytes`` bytes.

    A FIFO, device or folder is refused before anything is read (opening does not
    block); a larger file is refused without reading it. Raises :class:`ConfigError`.
    """
    where = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        raise ConfigError(where, f"cannot read file ({e.strerror or e})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise ConfigError(where, f"cannot read file: {kind} (expected a YAML file)")
        if st.st_size > max_bytes:
            raise ConfigError(
                where,
                f"file of {st.st_size:,} bytes is larger than the {max_bytes:,} bytes "
                "allowed for a YAML file",
            )
        chunks, size = [], 0
        while size <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as e:
        raise ConfigError(where, f"cannot read file ({e.strerror or e})") from None
    finally:
        os.close(fd)
    if size > max_bytes:
        raise ConfigError(where, f"file is larger than the {max_bytes:,} bytes allowed")
    raw = b"".join(chunks)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(
            where, f"not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start})"
        ) from None


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file under the bounds in the module docstring.

    Returns plain Python data (dicts with text keys, lists, str, int, float, bool,
    None). Any problem is a :class:`ConfigError` naming the file, with key paths.
    """
    text = read_text_bounded(path)
    try:
        if _CLoader is not None:
            _check_events(text)
            data = yaml.load(text, Loader=_CLoader)
        else:
            data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        if "maximum nesting depth" in problem:  # libyaml >= 0.2.5 stops at 1,000 levels
            problem = f"file refused: nested more than {MAX_YAML_DEPTH} levels deep"
        raise ConfigError(str(path), f"not valid YAML{where}: {shown(problem, 160)}") from None
    except RecursionError:
        raise ConfigError(str(path), "not valid YAML: nested too deeply") from None
    problems = value_problems(data)
    if problems:
        raise ConfigError(str(path), problems)
    return data


def _name_key(name: str) -> str:
    return re.sub(r"[-_\s.]", "", name.casefold())


def find_builtin(name: str, builtins: dict[str, Path]) -> Path | None:
    """The built-in file called ``name``: exact, else ignoring case, ``-``, ``_``,
    spaces and dots (``ResNet-50`` finds ``resnet50``); None when there is none."""
    if name in builtins:
        return builtins[name]
    if len(name) > 200:
        return None
    hits = [p for n, p in builtins.items() if _name_key(n) == _name_key(name)]
    return hits[0] if len(hits) == 1 else None


def did_you_mean(name: str, choices: list[str] | dict[str, Any]) -> str:
    """``"; did you mean resnet50?"`` for the choices closest to ``name`` (difflib
    ratio at least 0.75 and within 0.1 of the best, or ``name`` a prefix of it), or
    an empty string when none is."""
    names = list(choices)
    keys = {_name_key(n): n for n in names}
    target = _name_key(str(name)[:200])
    ratios = {k: difflib.SequenceMatcher(None, target, k).ratio() for k in keys}
    best = max(ratios.values(), default=0.0)
    for k in keys:  # a unique prefix of 3+ characters counts as close
        if len(target) >= 3 and k.startswith(target):
            ratios[k] = best = max(best, 0.99)
    close = sorted((k for k, r in ratios.items() if r >= max(0.75, best - 0.1)), key=ratios.get)
    close.reverse()
    return f"; did you mean {' or '.join(keys[c] for c in close)}?" if close else ""


def schema_problems(data: Any, schema: Mapping[str, Any], prefix: Iterable[Any] = ()) -> list[str]:
    """Every way ``data`` breaks the JSON ``schema``, one line each, led by its key path
    (``prefix`` first); values and keys from the file through :func:`shown`."""
    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    for err in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        where = key_path([*prefix, *err.absolute_path])
        if err.validator == "additionalProperties":
            known = err.schema.get("properties", {})
            extra = sorted(k for k in err.instance if k not in known)
            names = ", ".join(shown(k, 40) for k in extra[:10]) + (
                ", ..." if len(extra) > 10 else ""
            )
            problems.append(f"{where}: unknown key(s) {names} (known: {', '.join(sorted(known))})")
        elif err.validator == "oneOf":
            problems.append(
                f"{where}: expected an integer in range or a pair of them, "
                f"got {shown(err.instance)}"
            )
        else:
            problems.append(f"{where}: {_message(err)}")
    return problems


def _message(err: jsonschema.ValidationError) -> str:
    """A schema error in words, the offending value through :func:`shown`."""
    v = err.validator_value
    if isinstance(v, int) and not isinstance(v, bool) and v >= 2**16 and v & (v - 1) == 0:
        v = f"2**{v.bit_length() - 1}"
    expected = {
        "type": lambda: f"expected {' or '.join(v) if isinstance(v, list) else v}",
        "minimum": lambda: f"expected at least {v}",
        "maximum": lambda: f"expected at most {v}",
        "exclusiveMinimum": lambda: f"expected more than {v}",
        "exclusiveMaximum": lambda: f"expected less than {v}",
        "enum": lambda: f"expected one of {', '.join(map(str, v))}",
        "const": lambda: f"expected {v}",
        "minLength": lambda: "expected a non-empty text",
        "minItems": lambda: f"expected at least {v} item(s)",
        "maxItems": lambda: f"expected at most {v} item(s)",
        "minProperties": lambda: f"expected at least {v} key(s)",
    }.get(err.validator)
    if err.validator == "required":
        return err.message
    return f"{expected()}, got {shown(err.instance)}" if expected else err.message[:160]
