"""The one YAML reader: bounded work and clear errors on hostile files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from simulator import yamlio
from simulator.errors import ConfigError
from simulator.yamlio import did_you_mean, find_builtin, read_text_bounded, read_yaml


@pytest.fixture(autouse=True, params=["libyaml", "python"])
def loader(request, monkeypatch):
    """Every test here runs with libyaml (where PyYAML has it) and with the pure-Python
    loader that stands in where it does not."""
    if request.param == "libyaml" and yamlio._CLoader is None:
        pytest.skip("PyYAML without libyaml")
    if request.param == "python":
        monkeypatch.setattr(yamlio, "_CLoader", None)
    return request.param


def _outcome(path):
    try:
        return read_yaml(path)
    except ConfigError as e:
        return str(e)


def test_both_loaders_read_every_shipped_and_hostile_file_alike(monkeypatch):
    root = Path(__file__).parent.parent
    files = sorted(
        f
        for where in ("hwconfigs", "models", "tests/hostile/yaml")
        for f in root.glob(f"{where}/*.yaml")
    )
    assert len(files) > 30
    fast = {f: _outcome(f) for f in files}
    monkeypatch.setattr(yamlio, "_CLoader", None)
    for f in files:
        assert _outcome(f) == fast[f], f


def _read(tmp_path, text: str | bytes):
    p = tmp_path / "f.yaml"
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return read_yaml(p)


def _problem(tmp_path, text) -> str:
    with pytest.raises(ConfigError) as e:
        _read(tmp_path, text)
    assert str(tmp_path / "f.yaml") in str(e.value)
    return str(e.value)


def test_plain_files_still_read(tmp_path):
    assert _read(tmp_path, "a: 1e9\nb: 8e-12\nc: [1, 2]\nd: &x {e: 1}\n") == {
        "a": 1e9,
        "b": 8e-12,
        "c": [1, 2],
        "d": {"e": 1},
    }


def test_aliases_are_refused_at_the_first_one(tmp_path):
    bomb = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    bomb += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    text = _problem(tmp_path, "\n".join(bomb))
    assert "alias *a0 refused" in text and "line 2" in text
    assert "alias *m refused" in _problem(tmp_path, "a: &m [*m]\n")
    assert "alias" in _problem(tmp_path, "base: &b {x: 1}\nother:\n  <<: *b\n")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("a:\n  b: " + "9" * 5000 + "\n", "a.b: integer of 5,000 digits"),
        ("a: [1, -" + "9" * 400 + "]\n", "a[1]: integer of 400 digits"),
        ("a: 9223372036854775808\n", "a: integer of 64 bits is too large"),
        ("a: {b: .nan}\n", "a.b: expected a finite number"),
        ("a: 1e400\n", "a: expected a finite number, got inf"),
        ("~: 1\n", "(top level): an empty key (null) is not text"),
        ("a: {3: x}\n", "a: the key 3 is not text"),
        ("a: {true: x}\n", "a: the key True is not text"),
        ("? [a, b]\n: 1\n", "found unhashable key"),
        ("a: " + "[" * 100 + "]" * 100 + "\n", "nested more than 64 levels"),
        ("[" + "1," * 60_000 + "1]\n", "more than 50,000 values"),
        (b"a: \xff\n", "not UTF-8 text (byte 0xff at offset 3)"),
        ("a: [\n", "not valid YAML"),
    ],
)
def test_hostile_values_name_their_key_path(tmp_path, text, needle):
    assert needle in _problem(tmp_path, text)


def test_every_value_problem_at_once(tmp_path):
    with pytest.raises(ConfigError) as e:
        _read(tmp_path, "a: " + "1" * 100 + "\nb: .inf\n~: 2\n")
    assert len(e.value.problems) == 3


def test_special_and_large_files_are_refused_before_reading(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, needle in ((fifo, "not a regular file"), ("/dev/zero", "not a regular file")):
        with pytest.raises(ConfigError, match=needle):
            read_yaml(path)
    with pytest.raises(ConfigError, match="a folder"):
        read_yaml(tmp_path)
    with pytest.raises(ConfigError, match="cannot read file"):
        read_yaml(tmp_path / "missing.yaml")
    big = tmp_path / "big.yaml"
    big.write_text("a: 1\n" * 10)
    with pytest.raises(ConfigError, match="larger than the 20 bytes"):
        read_text_bounded(big, 20)
    assert yamlio.MAX_YAML_BYTES <= 16 * 2**20


def test_messages_escape_what_the_file_says(tmp_path):
    text = _problem(tmp_path, 'a: {"\\e[31m": 1}\n~: 2\nb: .nan\n')
    assert "\x1b" not in text


def test_builtin_names_ignore_case_and_punctuation(tmp_path):
    builtins = {"resnet50": tmp_path / "r.yaml", "a100": tmp_path / "a.yaml"}
    assert find_builtin("ResNet-50", builtins) == builtins["resnet50"]
    assert find_builtin("A100", builtins) == builtins["a100"]
    assert find_builtin("resnet", builtins) is None
    assert did_you_mean("resnet5", builtins) == "; did you mean resnet50?"
    assert did_you_mean("zzz", builtins) == ""


@pytest.mark.parametrize(
    ("name", "want"),
    [("lenet", "lenet5"), ("resnet5", "resnet50"), ("zcu", "zcu102"), ("a10", "a100")],
)
def test_did_you_mean_names_the_closest_only(name, want):
    choices = ["alexnet", "lenet5", "resnet18", "resnet50", "zcu102", "a100", "v100"]
    assert did_you_mean(name, choices) == f"; did you mean {want}?"
