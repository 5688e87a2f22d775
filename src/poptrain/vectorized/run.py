"""``poptrain.vectorized.run``: a vectorized PBT run kept in poptrain storage, resumable."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Sequence

from torch import Tensor, nn

from poptrain.algorithms import PBT
from poptrain.algorithms.rng import INIT, rng_for
from poptrain.checkpoints import CheckpointRef, CheckpointStore
from poptrain.errors import ConfigError, ExperimentMismatch
from poptrain.experiment import checkpoint_prefix, spec_differences
from poptrain.results import Result, load_result
from poptrain.space import Space
from poptrain.storage import DEFAULT_URL, mask_url, open_storage
from poptrain.vectorized.engine import train_population
from poptrain.vectorized.optim import SGD, StackedOptimizer
from poptrain.vectorized.storage_recorder import StorageRecorder

TRAINABLE = "poptrain.vectorized"


def run(
    *,
    name: str,
    model: Callable[[], nn.Module],
    loss: Callable[[Tensor, Tensor], Tensor],
    train_data: Sequence[Tensor] | Iterable[Sequence[Tensor]],
    space: Space | Mapping[str, Any],
    strategy: PBT,
    metric: str,
    mode: str = "max",
    population: int,
    budget: int,
    optimizer: StackedOptimizer = SGD(),
    batch_size: int | None = None,
    evaluate: Callable[..., Any] | None = None,
    eval_data: Sequence[Tensor] | Iterable[Sequence[Tensor]] | None = None,
    seed: int = 0,
    device: str = "cpu",
    initial_configs: Sequence[Mapping[str, Any]] | None = None,
    scores_kept: int = 10,
    storage: str = DEFAULT_URL,
    checkpoints: str = "poptrain_checkpoints",
) -> Result:
    """Train the population as one batched model and keep every record in storage.

    Takes the arguments of :func:`~poptrain.vectorized.train_population`, plus
    ``name``, ``storage`` and ``checkpoints``. Running again with the same
    name and storage resumes from the last ready point; a finished run just
    returns its result. The records are those of the worker path, so the CLI
    (``poptrain best --name NAME`` ...) and the reports read them unchanged.

    Example:
        >>> from poptrain.vectorized import run  # doctest: +SKIP
        >>> result = run(name="digits-vec", model=mlp, loss=F.cross_entropy, ...)  # doctest: +SKIP
        >>> result.best["schedule"]  # doctest: +SKIP
    """
    space = space if isinstance(space, Space) else Space(space)
    configs = [dict(c) for c in initial_configs] if initial_configs is not None else [
        space.sample(rng_for(seed, INIT, i)) for i in range(population)
    ]
    store = CheckpointStore(checkpoints)
    spec = {
        "name": name, "trainable": TRAINABLE, "engine": "vectorized", "space": space.to_json(),
        "strategy": strategy.to_json(), "metric": metric, "mode": mode, "population": population,
        "budget": budget, "seed": seed, "max_failures": 0, "scores_kept": scores_kept,
        "initial_configs": None if initial_configs is None else configs, "optimizer": repr(optimizer),
        "checkpoints": store.url,
    }
    st = open_storage(storage)
    try:
        existing = st.get_experiment(name)
        resume: CheckpointRef | None = None
        if existing is not None:
            diffs = spec_differences(existing.spec, spec)
            if existing.spec.get("engine") != "vectorized":
                diffs.append("engine: stored by worker processes, given the vectorized engine")
            if diffs:
                raise ExperimentMismatch(
                    f"experiment {name!r} already exists in {mask_url(st.url)} with a different definition:\n  "
                    + "\n  ".join(diffs)
                )
            record = existing
            if st.is_finished(record.id):
                return load_result(st, name)
            members = st.members(record.id)
            if any(m.state == "waiting" for m in members):
                # Stopped between recording an interval and its exploits: the
                # checkpoint already holds the exploited weights; only the
                # lineage of that one generation is lost.
                st.apply_generation(record.id, max(m.step for m in members), {}, decided_by="vectorized-resume")
                members = st.members(record.id)
            ck = members[0].checkpoint
            if ck is not None:
                resume = CheckpointRef(ck.key, ck.sha256, ck.size)
                store = CheckpointStore(existing.spec["checkpoints"])
        else:
            record = st.create_experiment(name, spec, configs)
        recorder = StorageRecorder(st, record.id, metric=metric, mode=mode, budget=budget, scores_kept=scores_kept)
        if existing is not None and resume is None and any(m.step for m in st.members(record.id)):
            raise ConfigError(f"experiment {name!r} has progress in storage but no checkpoint to resume from")
        train_population(
            model=model, loss=loss, train_data=train_data, space=space, strategy=strategy, metric=metric,
            mode=mode, population=population, budget=budget, optimizer=optimizer, batch_size=batch_size,
            evaluate=evaluate, eval_data=eval_data, seed=seed, device=device, initial_configs=configs,
            scores_kept=scores_kept, recorders=[recorder], checkpoints=store, name=checkpoint_prefix(name),
            resume_from=resume,
        )
        return load_result(st, name)
    finally:
        st.close()
