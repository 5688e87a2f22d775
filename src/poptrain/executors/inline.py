"""Workers in the calling process, one after another: breakpoints and profilers just work."""

from __future__ import annotations

from typing import Callable

from poptrain.executors.job import WorkerJob


class InlineExecutor:
    """Runs one worker in this process until the experiment is done (``workers`` is ignored)."""

    name = "inline"

    def run(self, job: WorkerJob, *, workers: int, on_progress: Callable[[], None] | None = None) -> None:
        done_at = [0.0]

        def stop() -> bool:
            import time

            now = time.monotonic()
            if on_progress is not None and now - done_at[0] > 0.5:
                done_at[0] = now
                on_progress()
            return False

        job.make_worker(should_stop=stop).run()
