"""Argument types of the command line: each parses one option's text or says, in one
line, what was expected."""

from __future__ import annotations

import argparse
import difflib
import math
import sys
from collections.abc import Callable, Iterable

from simulator.errors import PrunesimError


def size(text: str) -> int:
    """A memory size: ``4G``, ``512M``, ``100000`` (bytes)."""
    from simulator.memory import parse_bytes

    try:
        return parse_bytes(text, "--max-memory")
    except PrunesimError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def choice(options: Iterable[str]) -> Callable[[str], str]:
    """One of ``options``, in any case, with a "did you mean" for a near miss."""
    options = tuple(options)

    def parse(text: str) -> str:
        for o in options:
            if text.lower() == o.lower():
                return o
        close = difflib.get_close_matches(text.lower(), [o.lower() for o in options], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not one of {', '.join(options)}{hint}")

    parse.__name__ = "choice"
    return parse


def choices(options: Iterable[str]) -> Callable[[str], tuple[str, ...]]:
    """A comma-separated list of :func:`choice` values."""
    one = choice(options)

    def parse(text: str) -> tuple[str, ...]:
        out = tuple(dict.fromkeys(one(x.strip()) for x in text.split(",") if x.strip()))
        if not out:
            raise argparse.ArgumentTypeError("expected at least one name")
        return out

    parse.__name__ = "choices"
    return parse


def pair(text: str) -> tuple[int, int]:
    """``B`` or ``RxC``: a positive block size."""
    try:
        parts = [int(x) for x in text.lower().split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected B or RxC, got {text[:40]!r}") from None
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"expected positive B or RxC, got {text[:40]!r}")
    return parts[0], parts[1]


def nm_pattern(text: str) -> tuple[int, int]:
    """``N:M``, as :func:`simulator.masks.parse_nm` reads it."""
    from simulator.masks import parse_nm

    try:
        return parse_nm(text)
    except PrunesimError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def csv_list(kind: type) -> Callable[[str], tuple]:
    """A comma-separated list of ``kind`` (finite numbers for float)."""

    def parse(text: str) -> tuple:
        try:
            out = tuple(kind(x.strip()) for x in text.split(",") if x.strip())
        except ValueError:
            msg = f"expected a comma-separated list, got {text[:60]!r}"
            raise argparse.ArgumentTypeError(msg) from None
        if not out:
            raise argparse.ArgumentTypeError("expected at least one value")
        if kind is float and not all(math.isfinite(x) for x in out):
            raise argparse.ArgumentTypeError(f"expected finite numbers, got {text[:60]!r}")
        if kind is int and not all(abs(x) < 2**63 for x in out):
            raise argparse.ArgumentTypeError(f"number out of range in {text[:60]!r}")
        return out

    return parse


def count(low: int, high: int = 2**63 - 1) -> Callable[[str], int]:
    """An integer in [low, high]."""

    def parse(text: str) -> int:
        try:
            value = int(text[:30])
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text[:40]!r}") from None
        if not low <= value <= high or len(text) > 30:
            raise argparse.ArgumentTypeError(f"must be in [{low}, {high}], got {text[:40]}")
        return value

    return parse


def number(text: str) -> float:
    """A finite number."""
    try:
        value = float(text[:60])
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text[:40]!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text[:40]!r}")
    return value


def rate(text: str) -> float:
    """A pruning rate: a finite number >= 1 (8 keeps 1/8)."""
    value = number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"a rate must be >= 1, got {text[:40]}")
    return value


def fraction(text: str) -> float:
    """A kept fraction in (0, 1]."""
    value = number(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text[:40]}")
    return value


class Deprecated(argparse.Action):
    """An old spelling that still works for one release, with a note on stderr."""

    def __init__(self, option_strings, dest, new: str, convert: Callable = str, **kw):
        self.new, self.convert = new, convert
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        print(
            f"prunesim: note: {option_string} is deprecated and will be removed in the "
            f"next release; use {self.new}",
            file=sys.stderr,
        )
        try:
            setattr(namespace, self.dest, self.convert(values))
        except argparse.ArgumentTypeError as e:
            parser.error(f"argument {option_string}: {e}")
