"""The memory budget: large allocations are checked against it before they are made.

A hostile or mistaken input (a layer of 10^10 weights, a 100000x100000 block, a
tensor broadcast to gigabytes) must end in a clear :class:`ResourceError`, not in
the machine swapping or the process being killed. Code about to allocate a large
array calls :func:`require_bytes` with the size it needs; the limit defaults to half
of the machine's physical memory and is set by the ``--max-memory`` option
(:func:`set_memory_limit`) or the ``PRUNESIM_MAX_MEMORY`` environment variable.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import resource
from collections.abc import Iterator
from pathlib import Path

from simulator.errors import ConfigError, ResourceError

DEFAULT_FRACTION = 0.5
"""Share of the machine's physical memory that one allocation may take by default."""

_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
_limit_bytes: int | None = None


@functools.cache
def _machine_bytes() -> tuple[int, ...]:
    """The machine's physical memory and its container's cgroup limit (bytes, those
    known): fixed for the life of the process, so read once."""
    sizes = []
    try:
        sizes.append(int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")))
    except (ValueError, OSError, AttributeError):
        pass
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        with contextlib.suppress(OSError, ValueError):
            text = Path(path).read_text().strip()
            if text.isdigit() and int(text) < 2**60:
                sizes.append(int(text))
    return tuple(sizes)


def physical_memory_bytes() -> int:
    """The memory this process may use (bytes): the machine's physical memory, or less
    where a container's cgroup limit or the process's address-space limit
    (``ulimit -v``, less what is mapped already) says so; 8 GiB where nothing says."""
    sizes = list(_machine_bytes())
    with contextlib.suppress(ValueError, OSError, AttributeError):
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            sizes.append(max(soft - _mapped_bytes(), 0))
    return min(sizes) if sizes else 8 * 2**30


def _mapped_bytes() -> int:
    """Virtual memory this process has mapped (bytes; 0 where unknown)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def parse_bytes(text: str, where: str = "memory size") -> int:
    """``"2G"``, ``"512M"``, ``"1.5GiB"``, ``"100000"`` -> bytes (binary units)."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([kmgtKMGT]?)(?:i?[bB])?\s*", str(text)[:40])
    if not m:
        raise ConfigError(where, f"expected a size such as 4G, 512M or 100000, got {text!r}")
    value = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if not 1 <= value < 2**62:
        raise ConfigError(where, f"must be at least 1 byte and below 2^62, got {text!r}")
    return int(value)


def memory_limit_bytes() -> int:
    """The largest allocation allowed now (bytes)."""
    if _limit_bytes is not None:
        return _limit_bytes
    env = os.environ.get("PRUNESIM_MAX_MEMORY")
    if env:
        return parse_bytes(env, "PRUNESIM_MAX_MEMORY")
    return int(physical_memory_bytes() * DEFAULT_FRACTION)


def set_memory_limit(limit_bytes: int | None) -> None:
    """Set the limit for this process (None: back to the default)."""
    global _limit_bytes
    if limit_bytes is not None and not (isinstance(limit_bytes, int) and limit_bytes >= 1):
        raise ConfigError("memory limit", f"expected a positive byte count, got {limit_bytes!r}")
    _limit_bytes = limit_bytes


@contextlib.contextmanager
def memory_limit(limit_bytes: int | None) -> Iterator[None]:
    """Use ``limit_bytes`` inside the block."""
    before = _limit_bytes
    set_memory_limit(limit_bytes)
    try:
        yield
    finally:
        set_memory_limit(before)


def format_bytes(n: float) -> str:
    """A byte count for people: ``1.5 GiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def require_bytes(need_bytes: int | float, what: str, hint: str = "") -> None:
    """Raise :class:`ResourceError` if ``need_bytes`` exceeds the limit. ``what`` names
    the allocation (``"the mask of layer fc6"``); ``hint`` says what to do instead."""
    limit = memory_limit_bytes()
    if need_bytes > limit:
        tail = f"; {hint}" if hint else ""
        raise ResourceError(
            f"{what} would need {format_bytes(need_bytes)}, over the memory limit of "
            f"{format_bytes(limit)} (raise it with --max-memory or PRUNESIM_MAX_MEMORY){tail}"
        )
