"""Worker processes that cannot outlive their parent, and SIGTERM as an exception.

:func:`run_in_workers` runs tasks in ``spawn``-ed processes connected by one pipe
each (no multiprocessing Manager, no executor threads). Each worker watches its
parent: on Linux the kernel kills it when the parent dies (``PR_SET_PDEATHSIG``),
and everywhere a thread checks every half second that its parent is still the one
that started it, and ends the process when it is not. Workers ignore SIGINT (a
Ctrl-C at a terminal reaches the whole process group; the parent decides). When the
parent stops for any reason (an error, KeyboardInterrupt, SIGTERM through
:func:`sigterm_raises`), it terminates every worker before it returns, so no worker
finishes a task after its parent gave up on it.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from simulator.errors import PrunesimError

POLL_S = 0.5
"""How often a worker checks that its parent is alive (where the kernel cannot)."""


class Terminated(PrunesimError):
    """The process was asked to stop by a signal (SIGTERM) while it was working."""

    def __init__(self, text: str, signum: int = signal.SIGTERM):
        super().__init__(text)
        self.signum = int(signum)
        self.exit_code = 128 + self.signum


class WorkerError(PrunesimError):
    """A worker process ended without finishing its task, or raised an error that
    cannot be sent back as it was."""


@contextlib.contextmanager
def sigterm_raises(message: str) -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (``message``) in the main
    thread instead of killing the process, so that ``finally`` blocks (which stop
    worker processes) run. Does nothing outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated(message, signum)

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _die_with_parent(parent_pid: int) -> None:
    """End this process when ``parent_pid`` is no longer its parent."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:  # the parent died before the line above
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(POLL_S)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def _sendable(error: BaseException) -> BaseException:
    """``error`` if it survives pickling, else one that carries its message."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        if isinstance(error, PrunesimError):
            return PrunesimError(str(error))
        return WorkerError(f"{type(error).__name__}: {error}")


def _worker_main(parent_pid: int, conn, function: str) -> None:
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    module, _, name = function.partition(":")
    run = getattr(importlib.import_module(module), name)  # heavy imports after the watch
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        key, args = task

        def tick(*args, key=key) -> None:
            conn.send(("tick", key, args))

        try:
            result = run(*args, tick=tick)
        except Exception as e:
            conn.send(("error", key, _sendable(e), traceback.format_exc()))
        else:
            conn.send(("done", key, result))


def _stop(processes: Sequence, grace_s: float = 2.0) -> None:
    """Terminate (then kill) every process still alive, and reap them all."""
    for p in processes:
        if p.is_alive():
            with contextlib.suppress(OSError):
                p.terminate()
    deadline = time.monotonic() + grace_s
    for p in processes:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            with contextlib.suppress(OSError):
                p.kill()
            p.join()


def run_in_workers(
    function: str,
    tasks: Sequence[tuple[Any, tuple]],
    processes: int,
    on_tick: Callable[..., None] = lambda key, *args: None,
) -> dict[Any, Any]:
    """``function(*args, tick=...)`` for each ``(key, args)`` of ``tasks``, in up to
    ``processes`` spawned worker processes, in the order given; ``on_tick(key,
    *args)`` for every ``tick(*args)`` a task calls (the arguments must pickle).
    Returns ``{key: result}``. A task's error is raised here (after every worker was
    stopped). ``function`` is named as
    ``"module:name"``, imported by each worker only once it watches its parent."""
    import multiprocessing as mp
    from multiprocessing.connection import wait

    ctx = mp.get_context("spawn")
    queue = list(tasks)
    workers: list = []
    conns: dict = {}  # connection -> process
    busy: dict = {}  # connection -> key of its task
    results: dict[Any, Any] = {}
    try:
        for _ in range(max(1, min(processes, len(queue)))):
            here, there = ctx.Pipe()
            p = ctx.Process(target=_worker_main, args=(os.getpid(), there, function), daemon=True)
            p.start()
            there.close()
            workers.append(p)
            conns[here] = p

        def give(conn) -> None:
            task = queue.pop(0) if queue else None
            try:  # a BrokenPipeError must not pass for a closed stdout upstream
                conn.send(task)
            except OSError as e:
                if task is None:
                    return
                raise WorkerError(
                    f"a worker process ended before it could take {task[0]} "
                    f"(exit code {conns[conn].exitcode}; {e})"
                ) from None
            if task is not None:
                busy[conn] = task[0]

        for conn in list(conns):
            give(conn)
        while busy:
            for conn in wait(list(busy)):
                key = busy[conn]
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    p = conns[conn]
                    p.join(1.0)
                    raise WorkerError(
                        f"the worker process computing {key} ended without finishing it "
                        f"(exit code {p.exitcode})"
                    ) from None
                if message[0] == "tick":
                    on_tick(key, *message[2])
                elif message[0] == "done":
                    results[key] = message[2]
                    del busy[conn]
                    give(conn)
                else:
                    error = message[2]
                    error.add_note(f"(in the worker computing {key})\n{message[3]}")
                    raise error
        for p in workers:
            p.join(5.0)
        return results
    finally:
        _stop(workers)
        for conn in conns:
            conn.close()
