"""``poptrain run`` and ``poptrain worker``."""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

from poptrain.errors import ConfigError, StorageError


def load_experiment(path: str):  # noqa: ANN201
    """The module-level ``experiment`` of a Python file."""
    from poptrain.experiment import Experiment
    from poptrain.trainable import load_file

    module = load_file(path)
    exp = getattr(module, "experiment", None)
    if exp is None:
        raise ConfigError(f"{path} defines no module-level `experiment` (an poptrain.Experiment)")
    if not isinstance(exp, Experiment):
        raise ConfigError(f"`experiment` in {path} is a {type(exp).__name__}, not a poptrain.Experiment")
    return exp


def parse_options(items: list[str]) -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` -> ``{"a": {"b": 1}, "c": "x"}``: fsspec options from ``--checkpoint-option``.

    Example:
        >>> parse_options(["client_kwargs.endpoint_url=http://127.0.0.1:9000", "anon=false"])
        {'client_kwargs': {'endpoint_url': 'http://127.0.0.1:9000'}, 'anon': False}
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise ConfigError(f"The '--checkpoint-option' argument must look like KEY=VALUE; got {item!r} instead.")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"The '--checkpoint-option' {item!r} nests under {part!r}, which already has a value.")
        node[parts[-1]] = value
    return out


def run_file(args: argparse.Namespace) -> int:
    from poptrain.cli.tables import print_best
    from poptrain.driver import run

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    exp = load_experiment(args.file)
    executor: object = args.executor
    if args.executor == "ray":
        from poptrain.executors.ray import RayExecutor

        executor = RayExecutor(address=args.ray_address, num_cpus=args.num_cpus, num_gpus=args.num_gpus)
    trackers = []
    if args.tensorboard:
        from poptrain.reporting.trackers import TensorBoardTracker

        trackers.append(TensorBoardTracker(args.tensorboard))
    res = run(
        exp, storage=args.storage, checkpoints=args.checkpoints, workers=args.workers,
        executor=executor, lease_s=args.lease, progress=not args.no_progress, trackers=trackers, retry_failed=args.retry_failed,
        checkpoint_options=parse_options(args.checkpoint_options) or None,
    )
    if args.workers == 0:
        from poptrain.storage import mask_url

        print(f"experiment {exp.name!r} is ready in {mask_url(args.storage)}; start workers with: "
              f"poptrain worker --storage URL --name {exp.name}")
        return 0
    print_best(res)
    return 0


def join_as_worker(args: argparse.Namespace) -> int:
    from poptrain.executors.job import WorkerJob
    from poptrain.results import resolve_experiment
    from poptrain.storage.retry import RetryingStorage

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    options = parse_options(args.checkpoint_options) or None
    if args.wait < 0:
        raise ConfigError(f"The '--wait' argument must be >= 0 seconds; got {args.wait!r} instead.")
    st = RetryingStorage(args.storage, retry_s=args.wait)
    exp = resolve_experiment(st, args.name)
    url = args.checkpoints or exp.spec.get("checkpoints")
    if not url:
        raise StorageError(f"experiment {exp.name!r} records no checkpoint URL; pass --checkpoints")
    job = WorkerJob(storage_url=args.storage, checkpoints_url=url, experiment_id=exp.id, spec=exp.spec, lease_s=args.lease,
                    checkpoint_options=options, storage_retry_s=args.wait)
    stats = job.make_worker().run()
    if st.is_finished(exp.id):
        st.set_experiment_status(exp.id, "done")
    print(f"worker done: {stats.intervals} intervals, {stats.steps} steps, {stats.exploits} exploits")
    return 0
