"""Where the built-in data lives: ``models/`` and ``hwconfigs/``.

In a source checkout (or an editable install) they are the folders at the top of
the repository; an installed wheel carries them as ``simulator._models`` and
``simulator._hwconfigs``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_PACKAGES = {"models": "simulator._models", "hwconfigs": "simulator._hwconfigs"}


def data_dir(name: str) -> Path:
    """Folder of the built-in ``models`` or ``hwconfigs`` files."""
    try:
        installed = Path(str(resources.files(_PACKAGES[name])))
        if installed.is_dir():
            return installed
    except ModuleNotFoundError:  # a source checkout that is not installed
        pass
    return Path(__file__).resolve().parent.parent / name
