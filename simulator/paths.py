"""Where the built-in data lives: ``models/`` and ``hwconfigs/``.

In a source checkout (or an editable install) they are the folders at the top of
the repository; an installed wheel carries them inside the package as
``simulator/_models`` and ``simulator/_hwconfigs``.
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """Folder of the built-in ``models`` or ``hwconfigs`` files."""
    installed = _HERE / f"_{name}"
    return installed if installed.is_dir() else _HERE.parent / name
