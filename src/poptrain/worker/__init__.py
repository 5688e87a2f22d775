"""Workers: the loop that trains members, coordinating only through storage."""

from poptrain.worker.loop import Worker, WorkerStats

__all__ = ["Worker", "WorkerStats"]
