"""train_population end to end: decisions, records, hyperparameters in the space, errors, resume."""

from __future__ import annotations

import math
import uuid
from typing import Any, Mapping, Sequence

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from poptrain.algorithms import PBT, Exploit, Perturb, Truncation
from poptrain.checkpoints import CheckpointStore
from poptrain.errors import ConfigError, TrainableError
from poptrain.space import Choice, Float, Int, Ordered, Space
from poptrain.vectorized import SGD, Adam, AdamW, train_population


def make_model() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))


def data(n: int = 96, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    return x, y


def accuracy(out: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"acc": (out.argmax(-1) == y).float().mean(), "loss": F.cross_entropy(out, y)}


def run(**overrides: Any):
    kwargs: dict[str, Any] = dict(
        model=make_model, loss=F.cross_entropy, train_data=data(), eval_data=data(48, seed=1), batch_size=16,
        space={"lr": Float(1e-3, 0.5, log=True), "momentum": Float(0.0, 0.99)},
        strategy=PBT(interval=2, selection=Truncation(0.25), explore=Perturb()),
        metric="acc", mode="max", population=8, budget=8, evaluate=accuracy, optimizer=SGD(), seed=3,
    )
    kwargs.update(overrides)
    return train_population(**kwargs)


class CheckingRecorder:
    """Checks, at every event, that every member's config lies in the space."""

    def __init__(self, space: Space) -> None:
        self.space = space
        self.configs: list[dict] = []
        self.events: list[tuple] = []

    def start(self, configs: Sequence[Mapping[str, Any]], *, step: int) -> None:
        self.configs = [dict(c) for c in configs]
        for c in self.configs:
            self.space.validate(c)
        self.events.append(("start", step))

    def record_steps(self, step: int, metrics: Sequence[Mapping[str, float]]) -> None:
        assert len(metrics) == len(self.configs)
        self.events.append(("steps", step))

    def record_exploit(self, member, donor, step, old_config, new_config) -> None:
        assert member != donor
        assert old_config == self.configs[member]
        self.space.validate(new_config)
        self.configs[member] = dict(new_config)
        self.events.append(("exploit", step, member, donor))

    def record_checkpoint(self, step, ref) -> None:
        self.events.append(("checkpoint", step))

    def finish(self) -> None:
        self.events.append(("finish",))


def test_runs_pbt_and_records_history_exploits_and_lineage():
    result = run()
    assert len(result.history) == 8 * 8
    assert {r.step for r in result.history} == set(range(1, 9))
    assert all({"acc", "loss", "train_loss"} <= set(r.metrics) for r in result.history)
    assert result.exploits, "truncation over 8 members must exploit at some ready point"
    for e in result.exploits:
        assert e.step in (2, 4, 6) and e.member != e.donor
    for member in range(8):
        chain = result.schedule(member)
        assert chain[0].parent is None and chain[0].start_step == 0
        assert chain[-1].end_step == 8
    best = result.best
    assert best is not None and best.score == max(result.scores)
    model = make_model()
    model.load_state_dict(result.best_state)


def test_initial_configs_are_those_of_the_process_path():
    import poptrain as pt

    class Trainable:
        def __init__(self, config): ...
        def step(self): return {"acc": 0.0}
        def state_dict(self): return {}
        def load_state_dict(self, state): ...

    space = {"lr": Float(1e-3, 0.5, log=True), "momentum": Float(0.0, 0.99)}
    experiment = pt.Experiment(name="same", trainable=Trainable, space=space, metric="acc", population=8, seed=3)
    result = run(space=space, budget=1, seed=3)
    assert [s.config for s in result.segments[:8]] == experiment.initial_member_configs()


def test_same_seed_same_run():
    a, b = run(), run()
    assert [r.metrics for r in a.history] == [r.metrics for r in b.history]
    assert a.exploits == b.exploits
    assert a.configs == b.configs


@pytest.mark.parametrize("optimizer, space", [
    (SGD(), {"lr": Float(1e-3, 0.5, log=True), "momentum": Float(0.0, 0.99), "weight_decay": Float(0.0, 1e-3)}),
    (Adam(), {"optim": {"lr": Float(1e-4, 1e-1, log=True), "beta1": Float(0.5, 0.95), "eps": 1e-7}}),
    (AdamW(), {"lr": Ordered([1e-3, 3e-3, 1e-2, 3e-2]), "weight_decay": Choice([0.0, 0.01, 0.1]),
               "beta2": Float(0.9, 0.999)}),
], ids=["sgd", "adam-nested", "adamw-choices"])
def test_hyperparameters_trained_with_always_lie_in_the_space(optimizer, space):
    space = Space(space)
    recorder = CheckingRecorder(space)
    result = run(optimizer=optimizer, space=space, recorders=[recorder], budget=10,
                 strategy=PBT(interval=2, selection=Truncation(0.5), explore=Perturb(factors=(0.5, 2.0))))
    assert any(e[0] == "exploit" for e in recorder.events)
    assert recorder.configs == result.configs
    for seg in result.segments:
        space.validate(seg.config)


def test_events_come_in_order():
    space = Space({"lr": Float(1e-3, 0.5, log=True)})
    recorder = CheckingRecorder(space)
    store = CheckpointStore(f"memory://vec-{uuid.uuid4().hex}")
    run(space=space, recorders=[recorder], budget=5, checkpoints=store)
    kinds = [e[0] for e in recorder.events]
    assert kinds[0] == "start" and kinds[-1] == "finish"
    assert [e[1] for e in recorder.events if e[0] == "steps"] == [1, 2, 3, 4, 5]
    assert [e[1] for e in recorder.events if e[0] == "checkpoint"] == [2, 4, 5]


@pytest.mark.parametrize("space, optimizer, named", [
    ({"lr": Float(1e-3, 0.1), "batch_size": Ordered([16, 32])}, SGD(), "batch_size"),
    ({"lr": Float(1e-3, 0.1), "model": {"hidden": Int(8, 64)}}, SGD(), "model.hidden"),
    ({"lr": Float(1e-3, 0.1), "dropout": Float(0.0, 0.5)}, SGD(), "dropout"),
    ({"lr": Float(1e-3, 0.1), "momentum": Float(0.0, 0.9)}, Adam(), "momentum"),
    ({"lr": Float(1e-3, 0.1), "beta1": Float(0.5, 0.9)}, SGD(), "beta1"),
    ({"lr": Float(1e-3, 0.1), "epochs": 10}, SGD(), "epochs"),
    ({"lr": Float(1e-3, 0.1), "opt": {"lr": 0.1}}, SGD(), "opt.lr"),
    ({"lr": Choice(["fast", "slow"])}, SGD(), "lr"),
], ids=["batch_size", "nested-model-key", "dropout", "momentum-for-adam", "beta1-for-sgd", "constant",
        "twice", "not-a-number"])
def test_keys_the_engine_cannot_vary_raise_config_error_naming_them(space, optimizer, named):
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        run(space=space, optimizer=optimizer)


def test_out_of_range_hyperparameter_is_rejected():
    with pytest.raises(ConfigError, match="beta2"):
        run(space={"lr": Float(1e-3, 0.1), "beta2": Float(0.9, 1.5)}, optimizer=Adam())


def test_missing_metric_and_bad_loss_raise_trainable_error():
    with pytest.raises(TrainableError, match="'accuracy'"):
        run(metric="accuracy")
    with pytest.raises(TrainableError, match="one scalar per model"):
        run(loss=lambda out, y: F.cross_entropy(out, y, reduction="none"))


@pytest.mark.parametrize("kwargs, match", [
    (dict(population=0), "population"),
    (dict(budget=0), "budget"),
    (dict(mode="up"), "mode"),
    (dict(evaluate=None), "evaluate"),
    (dict(strategy=object()), "strategy"),
    (dict(train_data=iter([data()])), "iterator"),
    (dict(batch_size=0), "batch_size"),
    (dict(initial_configs=[{"lr": 0.1}]), "initial_configs"),
    (dict(initial_configs=[{"lr": 5.0, "momentum": 0.0}] * 8), "member 0"),
], ids=["population", "budget", "mode", "no-evaluate", "strategy", "iterator", "batch_size", "n-configs",
        "config-outside-space"])
def test_bad_arguments_raise_config_error(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        run(**kwargs)


def test_train_loss_metric_without_evaluate_and_batches_as_a_list():
    x, y = data()
    batches = [(x[i:i + 32], y[i:i + 32]) for i in range(0, 96, 32)]
    result = run(train_data=batches, eval_data=None, evaluate=None, metric="train_loss", mode="min", budget=4)
    assert set(result.history[0].metrics) == {"train_loss"}
    assert result.best.score == min(result.scores)


def test_nonfinite_member_is_never_a_donor():
    class Recorder(CheckingRecorder):
        def record_steps(self, step, metrics):
            super().record_steps(step, metrics)
            self.metrics = metrics

        def record_exploit(self, member, donor, step, old_config, new_config):
            assert math.isfinite(self.metrics[donor]["train_loss"])
            super().record_exploit(member, donor, step, old_config, new_config)

    space = Space({"lr": Float(1e-3, 1e6, log=True)})
    configs = [{"lr": 1e6}] + [{"lr": 0.01}] * 3
    recorder = Recorder(space)
    result = run(space=space, initial_configs=configs, population=4, evaluate=None, metric="train_loss",
                 mode="min", recorders=[recorder],
                 strategy=PBT(interval=2, selection=Truncation(0.25), explore=Perturb()))
    assert not math.isfinite(result.history[0].metrics["train_loss"]) or result.history[0].metrics["train_loss"] > 10
    assert 0 in {e.member for e in result.exploits}


class Crash(Exception):
    pass


class CrashAt(CheckingRecorder):
    def __init__(self, space: Space, step: int) -> None:
        super().__init__(space)
        self.crash_step = step
        self.ref = None

    def record_steps(self, step, metrics):
        if step == self.crash_step:
            raise Crash()
        super().record_steps(step, metrics)

    def record_checkpoint(self, step, ref):
        self.ref = ref


def test_resume_from_checkpoint_continues_as_if_never_stopped():
    space = Space({"lr": Float(1e-3, 0.5, log=True), "momentum": Float(0.0, 0.99)})
    store = CheckpointStore(f"memory://vec-{uuid.uuid4().hex}")
    straight = run(space=space, checkpoints=store, name="straight")

    crash = CrashAt(space, step=5)
    with pytest.raises(Crash):
        run(space=space, checkpoints=store, name="resumed", recorders=[crash])
    assert crash.ref is not None and "/step-00000004-" in crash.ref.key
    resumed = run(space=space, checkpoints=store, name="resumed", resume_from=crash.ref)

    assert [r.metrics for r in resumed.history] == [r.metrics for r in straight.history if r.step > 4]
    assert resumed.configs == straight.configs
    a = store.load(straight.checkpoint)["population"]["model"]["params"]
    b = store.load(resumed.checkpoint)["population"]["model"]["params"]
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert store.keys("resumed") == [resumed.checkpoint.key]


def test_resume_checks_the_checkpoint():
    store = CheckpointStore(f"memory://vec-{uuid.uuid4().hex}")
    first = run(checkpoints=store, budget=2)
    with pytest.raises(ConfigError, match="seed"):
        run(checkpoints=store, resume_from=first.checkpoint, seed=4)
    with pytest.raises(ConfigError, match="Adam"):
        run(checkpoints=store, resume_from=first.checkpoint, optimizer=Adam())
    with pytest.raises(ConfigError, match="checkpoints="):
        run(resume_from=first.checkpoint)


def test_strategy_decisions_are_applied_as_given():
    class Scripted:
        """Member 0 takes member 1's weights at step 2 with a fixed config."""

        interval = 2
        explore = None

        def next_ready(self, step):
            return (step // 2 + 1) * 2

        def can_exploit(self, step):
            return step % 2 == 0

        def decide_generation(self, population, *, space, rng):
            assert [m.step for m in population.members] == [population.members[0].step] * 2
            if population.members[0].step == 2:
                return {0: Exploit(donor=1, config={"lr": 0.01, "momentum": 0.5})}
            return {}

    result = run(strategy=Scripted(), population=2, budget=4,
                 initial_configs=[{"lr": 0.1, "momentum": 0.0}, {"lr": 0.01, "momentum": 0.5}])
    assert [(e.member, e.donor, e.step) for e in result.exploits] == [(0, 1, 2)]
    # Same weights, optimizer state, config and batches from step 2 on: member 0 follows member 1 exactly.
    later = [r for r in result.history if r.step > 2]
    for step in (3, 4):
        m0, m1 = (r.metrics for r in later if r.step == step)
        assert m0 == pytest.approx(m1, rel=1e-6)
    chain = result.schedule(0)
    assert [s.member for s in chain] == [1, 0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda():
    result = run(device="cuda")
    assert len(result.history) == 64
    assert all(v.device.type == "cpu" for v in result.best_state.values())


def _strategies():
    from poptrain.algorithms import Resample, Tournament, TTest
    from poptrain.algorithms.pb2 import PB2

    return [
        PBT(interval=2, selection=Truncation(0.25), explore=Resample(0.25)),
        PBT(interval=2, selection=Tournament(), explore=Perturb()),
        PBT(interval=2, selection=TTest(), explore=Perturb()),
        PBT(interval=2, selection=Truncation(0.25), explore=PB2()),
    ]


@pytest.mark.parametrize("strategy", _strategies(), ids=["truncation-resample", "tournament", "ttest", "pb2"])
def test_the_process_paths_strategies_drive_the_engine(strategy):
    space = Space({"lr": Float(1e-3, 0.5, log=True), "momentum": Float(0.0, 0.99)})
    recorder = CheckingRecorder(space)
    result = run(space=space, strategy=strategy, budget=8, recorders=[recorder])
    assert len(result.history) == 64
    for seg in result.segments:
        space.validate(seg.config)
