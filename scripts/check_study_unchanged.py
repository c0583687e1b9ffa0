"""Check that the study's outputs are byte-for-byte what an earlier commit writes.

    python scripts/check_study_unchanged.py REV [--out DIR] [-- STUDY OPTIONS...]

Checks REV out into a temporary git worktree, runs ``prunesim study`` (default
options unless given after ``--``) with REV's code and with this checkout's code,
each into its own folder under ``--out``, and compares every file under ``tables/``
and ``report.md`` byte for byte. Prints wall and CPU time of both runs; exits 1 if
anything differs. A change that is meant to leave the study alone (a refactoring)
must pass it at default settings.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_study(code: Path, out: Path, options: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of ``prunesim study`` run from the code in ``code``."""
    env = {**os.environ, "PYTHONPATH": str(code), "MPLBACKEND": "Agg"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "simulator", "study", "--no-resume", "--out", str(out), *options],
        env=env,
        cwd=out.parent,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return time.perf_counter() - t0, cpu


def differences(a: Path, b: Path) -> list[str]:
    """Files under ``tables/`` and ``report.md`` that differ or exist on one side only."""
    names = {p.relative_to(a) for p in (a / "tables").rglob("*") if p.is_file()}
    names |= {p.relative_to(b) for p in (b / "tables").rglob("*") if p.is_file()}
    names.add(Path("report.md"))
    out = []
    for name in sorted(names):
        fa, fb = a / name, b / name
        if not (fa.is_file() and fb.is_file()):
            out.append(f"{name}: only in {'the new run' if fb.is_file() else REV_LABEL}")
        elif not filecmp.cmp(fa, fb, shallow=False):
            out.append(f"{name}: differs")
    return out


REV_LABEL = "the base run"


def main() -> int:
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog="study options go after --"
    )
    parser.add_argument("rev", help="the commit to compare with, e.g. HEAD~3")
    parser.add_argument("--out", type=Path, help="folder for both runs (default: temporary)")
    args = parser.parse_args(argv[:cut])
    options = argv[cut + 1 :]
    out = args.out or Path(tempfile.mkdtemp(prefix="study-compare-"))
    out.mkdir(parents=True, exist_ok=True)
    base = out / "base-code"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(base), args.rev],
        check=True,
    )
    try:
        rows = []
        for label, code in ((args.rev, base), ("this checkout", ROOT)):
            target = out / ("base" if code == base else "new")
            wall, cpu = run_study(code, target, options)
            rows.append(f"  {label:<14} wall {wall:7.1f} s   CPU {cpu:7.1f} s   -> {target}")
            print(rows[-1], flush=True)
        diff = differences(out / "base", out / "new")
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], check=False
        )
    if diff:
        print(f"the study's outputs differ from {args.rev}'s:")
        print("\n".join(f"  {d}" for d in diff))
        return 1
    n = sum(1 for p in (out / "new" / "tables").rglob("*") if p.is_file())
    print(f"identical: report.md and {n} table files, byte for byte, as {args.rev} writes them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
