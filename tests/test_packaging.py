"""The installed package carries every subpackage and the built-in data."""

from __future__ import annotations

import tomllib
from pathlib import Path

from simulator.paths import data_dir

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_for_installation():
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "simulator").rglob("__init__.py")
    }
    assert found <= listed, f"not installed: {sorted(found - listed)}"


def test_builtin_data_is_found():
    models = {p.stem for p in data_dir("models").glob("*.yaml")}
    assert {"lenet5", "resnet50", "bert_base"} <= models
    assert len(list(data_dir("hwconfigs").glob("*.yaml"))) >= 11
