"""Workers as local processes (the default executor)."""

from __future__ import annotations

import multiprocessing as mp
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
import traceback
from typing import Any, Callable

from poptrain.errors import PoptrainError, TrainableError
from poptrain.executors.job import WorkerJob, experiment_finished


class WorkerProcessError(PoptrainError):
    """A worker process stopped with an error that retrying cannot fix."""


def _context() -> Any:
    # fork starts a worker in milliseconds with everything already imported;
    # elsewhere spawn re-imports the trainable from the path stored in the spec.
    if sys.platform.startswith("linux") and "fork" in mp.get_all_start_methods():
        return mp.get_context("fork")
    return mp.get_context("spawn")


def _orphaned(parent: int) -> Callable[[], bool]:
    """A ``should_stop`` that turns true once the driver process ``parent`` is gone.

    A driver killed outright (SIGKILL, out of memory) cannot stop its workers;
    without this they would train on as orphans beside the workers of a
    restarted driver. An orphan finishes and commits the interval it is
    training, hands its member back and exits.
    """
    gone = threading.Event()

    def watch() -> None:
        while not gone.wait(0.5):
            if os.getppid() != parent:
                gone.set()

    threading.Thread(target=watch, name="poptrain-parent-watch", daemon=True).start()
    return gone.is_set


def _worker_main(job: WorkerJob, errors: Any, parent: int | None = None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides when workers stop
    code = 0
    try:
        if parent is not None and os.getppid() != parent:  # the driver died before this worker started
            os._exit(0)
        job.make_worker(should_stop=_orphaned(parent) if parent is not None else lambda: False).run()
    except PoptrainError as exc:
        errors.put(str(exc) if isinstance(exc, TrainableError) else f"{type(exc).__name__}: {exc}")
        code = 3
    except BaseException:  # noqa: BLE001 - report, then die like a crashed worker
        errors.put(traceback.format_exc())
        code = 4
    errors.close()
    errors.join_thread()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: a forked child must not close database
    # connections it inherited from the driver (PostgreSQL would drop them).
    os._exit(code)


class LocalExecutor:
    """Starts ``workers`` processes on this machine and waits for them.

    A worker that crashes (killed, out of memory) is replaced, and its member
    is taken over from its last checkpoint; an error in the user's code that
    retrying cannot fix (a missing metric) stops the run with that message.
    """

    name = "local"

    def __init__(self, *, restart_crashed: bool = True, poll_s: float = 0.2) -> None:
        self.restart_crashed = restart_crashed
        self.poll_s = poll_s

    def run(self, job: WorkerJob, *, workers: int, on_progress: Callable[[], None] | None = None) -> None:
        ctx = _context()
        errors = ctx.Queue()
        procs = [self._start(ctx, job, errors) for _ in range(max(1, workers))]
        last = 0.0
        try:
            while True:
                if not errors.empty():
                    raise WorkerProcessError(errors.get())
                finished = [p for p in procs if not p.is_alive()]
                for p in finished:
                    p.join()
                    procs.remove(p)
                    if p.exitcode not in (0, 3, 4) and self.restart_crashed and not experiment_finished(job):
                        procs.append(self._start(ctx, job, errors))
                if not procs:
                    break
                now = time.monotonic()
                if on_progress is not None and now - last > 0.5:
                    last = now
                    on_progress()
                # Wake the moment a worker exits (the last one ends the run)
                # instead of sleeping a whole poll period after it.
                mp.connection.wait([p.sentinel for p in procs], timeout=self.poll_s)
            # A worker's error is put on the queue before it exits; its feeder
            # thread has flushed it (join_thread) by the time the process is gone.
            if not errors.empty():
                raise WorkerProcessError(errors.get())
        finally:
            for p in procs:
                if p.is_alive():
                    p.terminate()
            for p in procs:
                p.join(timeout=5)

    @staticmethod
    def _start(ctx: Any, job: WorkerJob, errors: Any) -> Any:
        p = ctx.Process(target=_worker_main, args=(job, errors, os.getpid()), daemon=True)
        p.start()
        return p
