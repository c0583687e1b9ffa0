"""The installed package carries every subpackage and the built-in data."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

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


@pytest.mark.slow
def test_the_wheel_carries_code_and_data(tmp_path):
    """Build the wheel as pip would and look inside: every module and every data file."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("prunesim-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in (ROOT / "simulator").rglob("*.py"):
        assert path.relative_to(ROOT).as_posix() in names
    for folder in ("models", "hwconfigs"):
        for path in (ROOT / folder).glob("*.yaml"):
            assert f"simulator/_{folder}/{path.name}" in names
    for path in (ROOT / "models" / "hf").glob("*.json"):  # Hugging Face configs
        assert f"simulator/_models/hf/{path.name}" in names
    assert "simulator/_models/hf/README.md" in names
    assert "simulator/py.typed" in names  # typed package (PEP 561)
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(meta).decode()
    assert "License-Expression: MIT" in text and "License-File: LICENSE" in text


def test_the_build_backend_is_new_enough_for_its_metadata():
    """``license = "MIT"`` (an SPDX expression) needs setuptools 77 or later."""
    doc = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert doc["project"]["license"] == "MIT"
    assert "setuptools>=77" in doc["build-system"]["requires"]
