"""What an executor hands to each worker it starts: enough to rebuild the worker anywhere."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from poptrain.checkpoints import CheckpointStore
from poptrain.experiment import Experiment, from_spec
from poptrain.storage import mask_url
from poptrain.storage.retry import RetryingStorage
from poptrain.worker import Worker


@dataclass
class WorkerJob:
    """Pickles as URLs and the experiment's stored spec, so a worker on another host rebuilds it."""

    storage_url: str
    checkpoints_url: str
    experiment_id: int
    spec: dict[str, Any]
    lease_s: float = 30.0
    experiment: Experiment | None = None
    checkpoint_options: dict[str, Any] | None = None
    trackers: tuple[Any, ...] = ()
    keep_all_checkpoints: bool = False
    cache_members: int = 2
    # How long a worker waits for an unreachable database (a restart, a network cut) before it gives up.
    storage_retry_s: float = 60.0

    def __repr__(self) -> str:
        # The storage URL may hold a password and the options credentials: neither is ever printed.
        return (f"WorkerJob(storage_url={mask_url(self.storage_url)!r}, checkpoints_url={self.checkpoints_url!r}, "
                f"experiment_id={self.experiment_id})")

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["experiment"] = None  # the trainable travels as its import path in the spec
        return state

    def make_worker(self, **kwargs: Any) -> Worker:
        exp = self.experiment if self.experiment is not None else from_spec(self.spec)
        return Worker(
            experiment=exp,
            experiment_id=self.experiment_id,
            storage=RetryingStorage(self.storage_url, retry_s=self.storage_retry_s),
            checkpoints=CheckpointStore(self.checkpoints_url, **(self.checkpoint_options or {})),
            lease_s=self.lease_s,
            **{"trackers": self.trackers, "keep_all_checkpoints": self.keep_all_checkpoints,
               "cache_size": self.cache_members, **kwargs},
        )


def experiment_finished(job: WorkerJob) -> bool:
    """Whether every member of the job's experiment is done or failed (executors ask before restarting a worker)."""
    from poptrain.storage.retry import RetryingStorage

    st = RetryingStorage(job.storage_url, retry_s=job.storage_retry_s)
    try:
        return st.is_finished(job.experiment_id)
    finally:
        st.close()
