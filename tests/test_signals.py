"""SIGTERM, SIGINT and SIGKILL of a parallel ``prunesim study`` stop every process it
started (workers, multiprocessing's resource tracker) within seconds.

Exit codes: SIGINT 130 ("prunesim: interrupted"); SIGTERM 143 (the shell's
convention), with one line that says the study was stopped by SIGTERM and that the
finished networks are kept (the library raises ``simulator.workers.Terminated``);
no traceback.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKING_CPU_S = 2.0
"""CPU seconds after which a worker is past its imports (about 1.2 s) and at work."""

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def _stat(pid: int) -> tuple[int, int, str] | None:
    """(parent pid, session id, state) of a process, None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[3]), fields[0]


def _processes() -> dict[int, tuple[int, int, str]]:
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (s := _stat(int(entry))) is not None:
            out[int(entry)] = s
    return out


def _cpu_s(pid: int) -> float:
    """User plus system CPU seconds a process has used (0 if it is gone)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _descendants(root: int) -> set[int]:
    procs = _processes()
    found, frontier = set(), {root}
    while frontier:
        frontier = {p for p, (ppid, _, _) in procs.items() if ppid in frontier} - found
        found |= frontier
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive_in_session(sid: int) -> list[str]:
    """Processes of the session (kept through re-parenting), zombies aside."""
    return [
        f"{pid} {_cmdline(pid)[:120]}"
        for pid, (_, s, state) in _processes().items()
        if s == sid and state != "Z"
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "when"),
    [
        (signal.SIGTERM, "at work"),
        (signal.SIGINT, "at work"),
        (signal.SIGKILL, "at work"),
        (signal.SIGKILL, "starting"),
    ],
)
def test_a_signal_to_a_parallel_study_leaves_no_process_behind(tmp_path, sig, when):
    """``at work``: both workers past their start-up; they must be gone within 5 s.
    ``starting``: the parent dies while the workers still import; each ends as soon
    as its imports are done and it finds its parent gone (within 60 s here, as the
    imports take their time on a loaded machine)."""
    argv = [
        sys.executable,
        "-m",
        "simulator",
        "study",
        "--networks",
        "alexnet,vgg16,bert_base,resnet50",  # work enough to be caught at work
        "--platforms",
        "eie,a100,scnn,zcu102",
        "--weight-bits",
        "8",
        "--index-bits",
        "4",
        "--structured-rates",
        "2",
        "--sweep-rates",
        "2,8",
        "--jobs",
        "2",
        "--no-resume",
        "--out",
        str(tmp_path / "study"),
    ]
    proc = subprocess.Popen(
        argv,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own session: found again after re-parenting
        # Python raises KeyboardInterrupt only where SIGINT was not ignored at start
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 120
        while True:  # two worker processes past their start-up, at work on a network
            assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "no two workers at work"
            spawned = [p for p in _descendants(proc.pid) if "spawn_main" in _cmdline(p)]
            least = WORKING_CPU_S if when == "at work" else 0.0
            if sum(_cpu_s(p) >= least for p in spawned) >= 2:
                break
            time.sleep(0.2)
        assert proc.poll() is None
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=90)  # orphans would hold stderr open
        text = err.decode()
        deadline = time.monotonic() + (5 if when == "at work" else 60)
        while (left := _alive_in_session(proc.pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert left == [], left
        assert "Traceback" not in text, text[-3000:]
        if sig == signal.SIGTERM:
            assert proc.returncode == 143 and "stopped by SIGTERM" in text, text
        elif sig == signal.SIGINT:
            assert proc.returncode == 130 and "interrupted" in text, text
        else:
            assert proc.returncode == -signal.SIGKILL
        assert not (tmp_path / "study" / "report.md").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for line in _alive_in_session(proc.pid):  # never leave a stray process
            os.kill(int(line.split()[0]), signal.SIGKILL)


def _double(n: int, tick) -> int:
    tick()
    return 2 * n


def _fail(n: int, tick) -> int:
    from simulator.errors import ConfigError

    raise ConfigError("model.yaml", f"bad network {n}")


def _die(n: int, tick) -> int:
    os._exit(3)


def test_workers_return_results_and_errors_and_notice_a_dead_worker():
    from simulator.errors import PrunesimError
    from simulator.workers import WorkerError, run_in_workers

    ticks = []
    tasks = [(n, (n,)) for n in range(3)]
    got = run_in_workers(f"{__name__}:_double", tasks, 2, on_tick=ticks.append)
    assert got == {0: 0, 1: 2, 2: 4} and sorted(ticks) == [0, 1, 2]
    with pytest.raises(PrunesimError, match=r"model\.yaml: bad network"):
        run_in_workers(f"{__name__}:_fail", tasks[:1], 2)
    with pytest.raises(WorkerError, match="computing 0 ended without finishing it"):
        run_in_workers(f"{__name__}:_die", tasks[:1], 2)
