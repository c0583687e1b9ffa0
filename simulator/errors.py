"""Exception types of prunesim.

The library raises subclasses of :class:`PrunesimError` and never prints or exits;
the command line turns them into one clear message and exit code 2.
"""

from __future__ import annotations

import numbers


class PrunesimError(Exception):
    """Base of every error prunesim raises on bad input."""


class ConfigError(PrunesimError):
    """A user-written file or value (model, hardware profile, pruning spec) is invalid.

    ``problems`` lists every problem found, each naming its key path, so that a user
    can fix them all at once.
    """

    def __init__(self, source: str, problems: list[str] | str):
        # a file name or value may hold control characters: escaped here, once for all
        self.source = printable(str(source))
        problems = [problems] if isinstance(problems, str) else list(problems)
        self.problems = [printable(str(p)) for p in problems]
        if len(self.problems) == 1:
            text = f"{self.source}: {self.problems[0]}"
        else:
            text = f"{self.source}: {len(self.problems)} problems:\n" + "\n".join(
                f"  - {p}" for p in self.problems
            )
        super().__init__(text)


class LayerError(PrunesimError):
    """A layer's geometry is impossible (non-positive size, groups, empty output)."""


class MaskError(PrunesimError):
    """A mask does not fit its layer (shape, values) or a pruning level is invalid."""


class FormatError(PrunesimError):
    """A sparse format was asked for with invalid parameters or cannot hold a mask."""


class CheckpointError(PrunesimError):
    """A checkpoint file cannot be read safely, or its tensors do not fit the network."""


class ResourceError(PrunesimError):
    """A computation would need more memory (or other resources) than allowed."""


def printable(text: str) -> str:
    """``text`` with control and non-printable characters escaped (``\\x1b``, ``\\n``),
    so that it cannot move the cursor, colour the terminal or forge a line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def shown(value: object, limit: int = 80) -> str:
    """``value`` as text safe to print: control and non-printable characters escaped
    (``\\x1b``, ``\\n``), at most ``limit`` characters (a longer text ends in ``...``).
    Bounded work whatever the value: only strings, bytes and numbers are shown, and
    never more of them than the limit needs (names read from files go through here).
    """
    if isinstance(value, bytes | bytearray):
        raw = bytes(value[: limit + 1]).decode("latin-1")
        whole = len(value) <= limit
    elif isinstance(value, str):
        raw, whole = value[: limit + 1], len(value) <= limit
    elif isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = int(value)
        if value.bit_length() > 64:
            return f"<integer of {value.bit_length()} bits>"
        raw, whole = repr(value), True
    elif isinstance(value, bool | numbers.Real) or value is None:
        raw, whole = repr(value if isinstance(value, bool) or value is None else float(value)), True
    else:
        return f"<{type(value).__name__}>"
    text = printable(raw)
    if whole and len(text) <= limit:
        return text
    return text[: max(limit - 3, 1)] + "..."
