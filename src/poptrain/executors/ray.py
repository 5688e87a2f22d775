"""Workers as Ray tasks: Ray places them on a cluster; all PBT state stays in storage.

Each task runs one ordinary poptrain worker (``WorkerJob.make_worker().run()``).
A task lost with its Ray worker or node is started again while the experiment
is unfinished; the member it was training is taken over from its last
checkpoint like any other dead worker's.

The trainable is found on the cluster the same way as everywhere else: by the
import path stored in the experiment (``module:Class``, which must be
importable on every node, e.g. an installed package or a ``runtime_env``
with ``py_modules``/``working_dir``), or by a file path that exists on every
node (``/shared/code/train.py:Class``).

Example:
    >>> from poptrain.executors.ray import RayExecutor
    >>> RayExecutor(num_cpus=2, num_gpus=1)
    RayExecutor(address=None, num_cpus=2.0, num_gpus=1.0)
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from typing import Any, Callable, Mapping

from poptrain._optional import require
from poptrain.errors import ConfigError, PoptrainError, TrainableError
from poptrain.executors.job import WorkerJob, experiment_finished
from poptrain.executors.local import WorkerProcessError

log = logging.getLogger("poptrain.executors")


def _run_worker(job: WorkerJob) -> dict[str, Any]:
    """The body of one Ray task: a poptrain worker that trains until the experiment is done."""
    import os
    import socket

    import ray

    worker = job.make_worker()
    stats = worker.run()
    ctx = ray.get_runtime_context()
    return dict(
        worker=worker.name, host=socket.gethostname(), pid=os.getpid(), node_id=ctx.get_node_id(),
        resources=dict(ctx.get_assigned_resources()), stats=dataclasses.asdict(stats),
    )


class RayExecutor:
    """Starts ``workers`` poptrain workers as Ray tasks and waits for them.

    Args:
        address: the Ray cluster to join (``"auto"``, ``"ray://head:10001"``,
            ...); None starts a local Ray instance unless Ray is already
            initialised in this process, in which case that one is used.
        num_cpus: CPUs each worker reserves.
        num_gpus: GPUs each worker reserves (fractions share a GPU).
        resources: custom Ray resources each worker reserves.
        memory: bytes of memory each worker reserves, for Ray's scheduler.
        runtime_env: Ray runtime environment of the workers (e.g. ``py_modules``
            so that a ``module:Class`` trainable imports on every node).
        init_kwargs: more keyword arguments for ``ray.init``.
        task_options: more options for the worker tasks (e.g.
            ``scheduling_strategy="SPREAD"``).
        max_restarts: how many lost workers to start again (None: no limit,
            as long as the experiment is unfinished).
        poll_s: how often to check on the workers and report progress.

    Only the workers this executor started are waited for; a Ray instance it
    started is shut down when the run ends.

    Attributes:
        results: after ``run``, one dict per worker task that ended on its own:
            worker name, host, pid, Ray node id, the resources Ray assigned it
            and its :class:`~poptrain.worker.WorkerStats` as a dict.
        restarts: how many lost worker tasks ``run`` started again.
    """

    name = "ray"

    def __init__(
        self,
        *,
        address: str | None = None,
        num_cpus: float = 1.0,
        num_gpus: float = 0.0,
        resources: Mapping[str, float] | None = None,
        memory: int | None = None,
        runtime_env: Mapping[str, Any] | None = None,
        init_kwargs: Mapping[str, Any] | None = None,
        task_options: Mapping[str, Any] | None = None,
        max_restarts: int | None = None,
        poll_s: float = 0.5,
    ) -> None:
        for pname, value in (("num_cpus", num_cpus), ("num_gpus", num_gpus)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"The '{pname}' parameter of RayExecutor must be a number >= 0; got {value!r} instead.")
        if max_restarts is not None and (not isinstance(max_restarts, int) or max_restarts < 0):
            raise ConfigError(f"The 'max_restarts' parameter of RayExecutor must be None or an int >= 0; got {max_restarts!r} instead.")
        self.address = address
        self.num_cpus = float(num_cpus)
        self.num_gpus = float(num_gpus)
        self.resources = dict(resources or {})
        self.memory = memory
        self.runtime_env = dict(runtime_env) if runtime_env else None
        self.init_kwargs = dict(init_kwargs or {})
        self.task_options = dict(task_options or {})
        self.max_restarts = max_restarts
        self.poll_s = poll_s
        self.results: list[dict[str, Any]] = []
        self.restarts = 0

    def __repr__(self) -> str:
        return f"RayExecutor(address={self.address!r}, num_cpus={self.num_cpus}, num_gpus={self.num_gpus})"

    def run(self, job: WorkerJob, *, workers: int, on_progress: Callable[[], None] | None = None) -> None:
        ray = require("ray", feature="the Ray executor")
        if not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"The 'workers' parameter of RayExecutor.run must be an int >= 1; got {workers!r} instead.")
        started = self._init(ray)
        task = ray.remote(_run_worker).options(**self._options())
        self.results, self.restarts = [], 0
        pending: dict[Any, int] = {task.remote(job): i for i in range(workers)}
        last = 0.0
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=self.poll_s)
                for ref in ready:
                    slot = pending.pop(ref)
                    if self._finished(ray, ref) or experiment_finished(job):
                        continue
                    if self.max_restarts is not None and self.restarts >= self.max_restarts:
                        raise WorkerProcessError(
                            f"Ray worker {slot} was lost and the {self.max_restarts} restart(s) allowed are used up"
                        )
                    self.restarts += 1
                    log.warning("Ray worker %s was lost; starting another (restart %s)", slot, self.restarts)
                    pending[task.remote(job)] = slot
                now = time.monotonic()
                if on_progress is not None and now - last > 0.5:
                    last = now
                    on_progress()
        finally:
            for ref in pending:
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001 - already gone
                    pass
            if started:
                ray.shutdown()

    # -- helpers -----------------------------------------------------------
    def _init(self, ray: Any) -> bool:
        if ray.is_initialized():
            return False
        kwargs = dict(self.init_kwargs)
        kwargs.setdefault("include_dashboard", False)
        ray.init(address=self.address, **kwargs)
        return True

    def _options(self) -> dict[str, Any]:
        opts: dict[str, Any] = dict(num_cpus=self.num_cpus, num_gpus=self.num_gpus, max_retries=0)
        if self.resources:
            opts["resources"] = self.resources
        if self.memory is not None:
            opts["memory"] = self.memory
        if self.runtime_env is not None:
            opts["runtime_env"] = self.runtime_env
        opts.update(self.task_options)
        return opts

    def _finished(self, ray: Any, ref: Any) -> bool:
        """True when the task ended on its own; False when Ray lost it; raises the user's errors."""
        try:
            self.results.append(ray.get(ref))
            return True
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, TrainableError):
                raise WorkerProcessError(str(cause)) from None
            if isinstance(cause, PoptrainError):
                raise WorkerProcessError(f"{type(cause).__name__}: {cause}") from None
            raise WorkerProcessError(str(exc)) from None
        except ray.exceptions.TaskCancelledError:
            return True
        except ray.exceptions.RayError as exc:  # worker or node died, object lost, out of memory
            log.warning("Ray worker task lost: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return False
