"""The README matches the program: every quick shell example runs as written (from a
folder that has the repository's tests/ and examples/), and the outputs it shows are
what the commands print, table headers and shown rows alike ("..." elides rows).

Left out, as too slow for the suite: the full default study (the quick start),
``calibrate`` and ``validate`` (each "under a minute") and the estimate on the
profile ``calibrate`` writes; the sweep on Dask (a LocalCluster starts in seconds;
tests/test_sweep_engines.py runs one) and ``plot-sweep``, which reads the folder a
sweep line writes (each line here runs in a folder of its own;
tests/test_sweep_analysis.py runs it on a sweep it made)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from simulator.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SLOW = ("prunesim calibrate", "prunesim validate", "this_cpu.yaml", "--dask", "plot-sweep")


def _blocks(language: str) -> list[list[str]]:
    """The README's fenced blocks of one language ("" for plain ones), as lines."""
    out, current, fence = [], None, re.compile(r"^```(\w*)\s*$")
    for line in README.splitlines():
        m = fence.match(line)
        if m and current is None:
            current = [] if m.group(1) == language else False
        elif m:
            if current is not False:
                out.append(current)
            current = None
        elif current not in (None, False):
            current.append(line)
    return out


def _command(line: str) -> str:
    """A shell line without its trailing comment."""
    return re.split(r"\s+#\s", line, maxsplit=1)[0].strip()


COMMANDS = [
    _command(line)
    for block in _blocks("bash")
    for line in block
    if line.startswith("prunesim ") and not any(s in line for s in SLOW)
]

SHOWN = {
    # first line of an output block shown in the README -> the command that prints it
    "random 8x, 4-bit weights, 4-bit relative indices": "prunesim storage",
    "Totals (speedup and energy ratio against dense": (
        "prunesim estimate resnet50 --platform eie,zcu102,tpu_v1,a100 --rate 8 --totals"
    ),
    "tests/fixtures/lenet5_ns_prune.pt (torch-zip) onto lenet5": (
        "prunesim inspect tests/fixtures/lenet5_ns_prune.pt --model lenet5"
    ),
}


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    for name in ("tests", "examples"):
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(line: str, capsys) -> tuple[int, str]:
    argv = shlex.split(line)
    target = None
    if ">" in argv:
        at = argv.index(">")
        argv, target = argv[:at], argv[at + 1]
    assert argv[0] == "prunesim"
    code = main(argv[1:])
    out = capsys.readouterr().out
    if target:
        Path(target).write_text(out)
    return code, out


def test_the_readme_has_examples():
    assert len(COMMANDS) >= 15
    assert set(SHOWN.values()) <= set(COMMANDS)


@pytest.mark.parametrize("line", COMMANDS)
def test_readme_command_runs(line, workdir, capsys):
    code, out = _run(line, capsys)
    assert code == 0, line
    assert out.strip() or ">" in line or "--json" in line or "--csv" in line


def _shown(first: str) -> list[str]:
    block = next(b for b in _blocks("") if b and b[0].startswith(first))
    return [line.rstrip() for line in block]


@pytest.mark.parametrize("first", sorted(SHOWN))
def test_readme_output_is_what_the_command_prints(first, workdir, capsys):
    code, out = _run(SHOWN[first], capsys)
    assert code == 0
    printed = [line.rstrip() for line in out.splitlines()]
    missing = [line for line in _shown(first) if line != "..." and line not in printed]
    assert not missing, f"README lines not printed by {SHOWN[first]!r}:\n" + "\n".join(missing)


def test_readme_verdict_excerpt_has_the_printed_shape(workdir, capsys):
    """The default study is too slow here: a one-network study prints the same title
    and columns as the README's excerpt of the default one."""
    code, out = _run(
        "prunesim study --networks lenet5 --platforms eie,a100 --out small --jobs 1", capsys
    )
    assert code == 0
    shown = _shown("Verdict at a margin of")
    printed = out.splitlines()
    head = next(i for i, line in enumerate(shown) if line.startswith("network "))
    assert shown[:head] == printed[:head]  # the title lines
    assert shown[head].split() == printed[head].split()  # the columns
