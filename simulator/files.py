"""Files written whole or not at all: under a hidden temporary name beside the
target, then renamed into place."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from simulator.errors import ConfigError


def temporary_name(path: Path) -> Path:
    """A hidden name beside ``path`` for writing it before renaming it into place
    (same suffix, so that writers that go by the suffix still work)."""
    return path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")


def write_via(path: Path, write: Callable[[Path], object]) -> Path:
    """Write ``path`` through ``write(temporary path)`` and rename it into place, so
    that a killed writer never leaves a half-written file under the final name; an
    OS error is a :class:`ConfigError` naming the file."""
    tmp = temporary_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        os.replace(tmp, path)
    except OSError as e:
        raise ConfigError(str(path), f"cannot write file ({e.strerror or e})") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return path
