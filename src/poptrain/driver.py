"""``poptrain.run``: create or resume an experiment, start workers, return the result."""

from __future__ import annotations

import logging
import os
from typing import Any, Callable, Sequence

from poptrain.checkpoints import CheckpointStore
from poptrain.errors import ConfigError, ExperimentMismatch
from poptrain.executors import get_executor
from poptrain.executors.job import WorkerJob
from poptrain.experiment import Experiment, spec_differences
from poptrain.results import Result, load_result
from poptrain.storage import DEFAULT_URL, ExperimentRecord, Storage, mask_url, open_storage

log = logging.getLogger("poptrain")

DEFAULT_CHECKPOINTS = "poptrain_checkpoints"


def prepare(
    experiment: Experiment, storage: Storage, checkpoints: str | None, checkpoint_options: dict[str, Any] | None = None
) -> tuple[ExperimentRecord, str]:
    """Create the experiment in storage, or check that the stored one is the same experiment.

    Returns the record and the checkpoint URL to use (the stored one on resume).
    """
    spec = experiment.spec()
    existing = storage.get_experiment(experiment.name)
    if existing is not None:
        diffs = spec_differences(existing.spec, spec)
        if diffs:
            raise ExperimentMismatch(
                f"experiment {experiment.name!r} already exists in {mask_url(storage.url)} with a different definition:\n  "
                + "\n  ".join(diffs)
                + "\nUse another name, or another storage, to start a new experiment."
            )
        url = existing.spec.get("checkpoints") or checkpoints or DEFAULT_CHECKPOINTS
        if checkpoints and checkpoints != url:
            log.warning("experiment %r keeps its checkpoints in %s; ignoring %s", experiment.name, url, checkpoints)
        return existing, url
    store = CheckpointStore(checkpoints or DEFAULT_CHECKPOINTS, **(checkpoint_options or {}))
    spec["checkpoints"] = store.url
    record = storage.create_experiment(experiment.name, spec, experiment.initial_member_configs())
    if record.spec.get("checkpoints") != store.url:  # another driver created it a moment ago
        return prepare(experiment, storage, checkpoints, checkpoint_options)
    return record, store.url


def run(
    experiment: Experiment,
    *,
    storage: str = DEFAULT_URL,
    checkpoints: str | None = None,
    workers: int | None = None,
    executor: str | Any = "local",
    lease_s: float = 30.0,
    progress: bool | Callable[[dict[str, Any]], None] = False,
    checkpoint_options: dict[str, Any] | None = None,
    trackers: Sequence[Any] = (),
    keep_all_checkpoints: bool = False,
    retry_failed: bool = False,
    cache_members: int = 2,
) -> Result:
    """Run (or resume) ``experiment`` until every member has trained ``budget`` steps.

    Args:
        experiment: what to train.
        storage: database URL; ``sqlite:///poptrain.db`` by default.
        checkpoints: fsspec URL of the checkpoint folder (``poptrain_checkpoints`` by default).
        workers: worker processes (default: the number of CPU cores); ``0``
            only creates or resumes the experiment and returns, for workers
            started elsewhere with ``poptrain worker``.
        executor: ``"local"`` (processes), ``"inline"`` (this process) or ``"ray"``, or an executor object.
        lease_s: how long a silent worker keeps its member before another takes it over.
        progress: True for a terminal progress display, or a callback receiving progress dicts.
        checkpoint_options: fsspec options for the checkpoint filesystem (e.g.
            ``{"client_kwargs": {"endpoint_url": ...}}``); never stored.
        cache_members: members whose trained state each worker keeps in
            memory to skip a checkpoint read (each costs a model's memory).
        retry_failed: on resume, give members that failed ``max_failures``
            times another chance, from their last checkpoint.
        keep_all_checkpoints: keep every checkpoint (for later replay from any
            point) instead of only each member's latest and the best.
        trackers: objects with ``on_step``, ``on_exploit`` and ``close`` (e.g.
            :class:`poptrain.reporting.trackers.TensorBoardTracker`), copied into every worker.

    Returns:
        The :class:`~poptrain.results.Result`, read back from storage.

    Example:
        >>> import poptrain  # doctest: +SKIP
        >>> result = poptrain.run(experiment, workers=2)  # doctest: +SKIP
        >>> result.best["config"]  # doctest: +SKIP
    """
    if workers is None:
        workers = os.cpu_count() or 1
    if not isinstance(workers, int) or workers < 0:
        raise ConfigError(f"The 'workers' parameter must be an int >= 0; got {workers!r} instead.")
    st = open_storage(storage)
    try:
        record, ckpt_url = prepare(experiment, st, checkpoints, checkpoint_options)
        if retry_failed and st.reopen_failed(record.id):
            st.set_experiment_status(record.id, "running")
        if workers == 0 or st.is_finished(record.id):
            if st.is_finished(record.id) and record.status != "done":
                st.set_experiment_status(record.id, "done")
            return load_result(st, experiment.name)
        job = WorkerJob(
            storage_url=storage, checkpoints_url=ckpt_url, experiment_id=record.id, spec=record.spec,
            lease_s=lease_s, experiment=experiment, checkpoint_options=checkpoint_options,
            trackers=tuple(trackers), keep_all_checkpoints=keep_all_checkpoints, cache_members=cache_members,
        )
        ex = get_executor(executor) if isinstance(executor, str) else executor
        reporter = _progress_reporter(st, record.id, experiment, progress)
        try:
            ex.run(job, workers=workers, on_progress=reporter.update if reporter else None)
        finally:
            if reporter:
                reporter.close()
        if st.is_finished(record.id):
            st.set_experiment_status(record.id, "done")
            if not keep_all_checkpoints:
                sweep_checkpoints(st, record.id, experiment.checkpoint_prefix, CheckpointStore(ckpt_url, **(checkpoint_options or {})))
        return load_result(st, experiment.name)
    finally:
        st.close()


def sweep_checkpoints(st: Storage, experiment_id: int, name: str, store: CheckpointStore) -> list[str]:
    """Delete the finished experiment's checkpoint files that storage no longer records.

    Workers forget checkpoints as they go; this catches files whose record
    never committed (a worker that lost its lease, or died between writing a
    checkpoint and reporting it).
    """
    keep = {c["key"] for c in st.checkpoint_records(experiment_id)}
    keep |= {m.checkpoint.key for m in st.members(experiment_id) if m.checkpoint is not None}
    try:
        return store.collect_garbage(name, keep=keep)
    except Exception as exc:  # noqa: BLE001 - leftover files are not worth failing a finished run
        log.warning("could not sweep checkpoints of %r: %s", name, exc)
        return []


def _progress_reporter(st: Storage, exp_id: int, experiment: Experiment, progress: Any) -> Any:
    if not progress:
        return None
    from poptrain.cli.progress import ProgressReporter

    return ProgressReporter(st, exp_id, experiment.population * experiment.budget, experiment.mode,
                            callback=progress if callable(progress) else None)


def experiments_in(storage: str) -> Sequence[ExperimentRecord]:
    return open_storage(storage).list_experiments()
