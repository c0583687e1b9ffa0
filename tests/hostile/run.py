"""Run the command line on hostile input in a forked child, under a time and memory cap.

:func:`run_cli` forks this (already imported) process, runs ``simulator.cli.main``
in the child with its output captured, and reports the exit code, the output, the
wall time and how much the child's resident memory grew. A child that runs past
``timeout_s`` is killed; an address-space cap (``hard_cap_bytes`` of growth) keeps a
runaway allocation from taking the machine down, but the tests assert on the
measured growth, so an input that is only stopped by the cap still fails.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import sys
import tempfile
import time
from dataclasses import dataclass

GIB = 2**30


@dataclass(frozen=True)
class Outcome:
    """What one run did: ``rc`` is the exit code (``None``: killed at the timeout)."""

    rc: int | None
    stdout: str
    stderr: str
    seconds: float
    growth_bytes: int

    @property
    def clean_refusal(self) -> bool:
        """Exit code 2 with exactly one line on stderr, and no traceback anywhere."""
        lines = self.stderr.strip().splitlines()
        return (
            self.rc == 2
            and len(lines) == 1
            and "Traceback" not in self.stderr + self.stdout
            and lines[0].startswith("prunesim")
        )


def _vm_bytes(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def run_cli(
    argv: list[str],
    *,
    timeout_s: float = 5.0,
    hard_cap_bytes: int = 3 * GIB,
    cwd: str | None = None,
) -> Outcome:
    """``prunesim ARGV`` in a forked child (see the module docstring)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        base_rss = _vm_bytes("VmRSS")
        t0 = time.perf_counter()
        pid = os.fork()
        if pid == 0:  # child
            code = 70
            try:
                os.dup2(out.fileno(), 1)
                os.dup2(err.fileno(), 2)
                # the parent's sys.stdout/stderr may be a test runner's capture objects
                sys.stdout = open(1, "w", encoding="utf-8", closefd=False)
                sys.stderr = open(2, "w", encoding="utf-8", closefd=False)
                os.setpgid(0, 0)
                cap = _vm_bytes("VmSize") + hard_cap_bytes
                resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
                if cwd:
                    os.chdir(cwd)
                from simulator.cli import main

                code = main(argv)
            except BaseException:
                import traceback

                traceback.print_exc()
            finally:
                for stream in (sys.stdout, sys.stderr):
                    with contextlib.suppress(Exception):
                        stream.flush()
                os._exit(code if isinstance(code, int) else 70)
        deadline = t0 + timeout_s
        rc = None
        while time.perf_counter() < deadline:
            done, status, usage = os.wait4(pid, os.WNOHANG)
            if done:
                rc = os.waitstatus_to_exitcode(status)
                break
            time.sleep(0.01)
        else:
            os.killpg(pid, signal.SIGKILL)
            _, _, usage = os.wait4(pid, 0)
        seconds = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        return Outcome(
            rc=rc,
            stdout=out.read(1_000_000).decode("utf-8", "replace"),
            stderr=err.read(1_000_000).decode("utf-8", "replace"),
            seconds=seconds,
            growth_bytes=max(usage.ru_maxrss * 1024 - base_rss, 0),
        )
