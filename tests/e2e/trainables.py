"""Small trainables the end-to-end tests run for real."""

from __future__ import annotations

import math
import os

import numpy as np

from poptrain.algorithms import PBT, Truncation
from poptrain.experiment import Experiment
from poptrain.space import Float


class Climber:
    """Deterministic: score grows by ``rate`` each step. Reports what it trained with."""

    def __init__(self, config: dict) -> None:
        self.x = 0.0
        self.rate = config["rate"]

    def apply_config(self, config: dict) -> None:
        self.rate = config["rate"]

    def step(self) -> dict:
        before = self.x
        self.x += self.rate
        return {"score": self.x, "rate_used": self.rate, "x_before": before}

    def state_dict(self) -> dict:
        return {"x": self.x, "rate": self.rate}

    def load_state_dict(self, state: dict) -> None:
        self.x = float(state["x"])
        self.rate = float(state["rate"])  # stale on purpose: apply_config must win


class FailsOnce(Climber):
    """Raises once at step 3 of the member whose rate is lowest (a marker file remembers)."""

    marker = ""

    def step(self) -> dict:
        if self.x >= 2 * self.rate and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            raise RuntimeError("transient failure")
        return super().step()


class AlwaysFailsSlow(Climber):
    def step(self) -> dict:
        if self.rate < 0.2:
            raise RuntimeError("this member cannot train")
        return super().step()


class NoMetric(Climber):
    def step(self) -> dict:
        return {"not_the_metric": 1.0}


class NaNMember(Climber):
    def step(self) -> dict:
        out = super().step()
        if self.rate > 0.9:
            out["score"] = math.nan
        return out


def climber_experiment(name: str = "climb", *, trainable=Climber, synchronous: bool = False, population: int = 4,
                       budget: int = 20, interval: int = 4, seed: int = 0, **kw) -> Experiment:
    return Experiment(
        name=name,
        trainable=trainable,
        space={"rate": Float(0.01, 1.0)},
        metric="score",
        strategy=PBT(interval=interval, selection=Truncation(0.25), synchronous=synchronous),
        population=population,
        budget=budget,
        seed=seed,
        **kw,
    )


def rng_state(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=3)


def row_at(rows: dict, segments: dict, segment: int, step: int) -> dict:
    """The metrics of the step that produced the weights of ``segment`` at ``step``.

    A segment that has not trained yet (its member copied a donor and was
    copied on at once) holds its parent's weights, so walk up the lineage.
    """
    seg = segment
    while (seg, step) not in rows:
        parent = segments[seg]["parent"]
        if parent is None:
            raise KeyError((segment, step))
        seg = parent
    return rows[(seg, step)]


class Unsaveable(Climber):
    """Its state holds an object that cannot be saved without pickle."""

    def state_dict(self) -> dict:
        return {"x": self.x, "rate": self.rate, "optimizer": {"hook": object()}}


import poptrain  # noqa: E402


@poptrain.function_trainable
def climbing(config, ctx):
    """Climber as a generator: the rate comes from the live config, the position is tracked."""
    pos = {"x": 0.0}
    ctx.track(pos=pos)
    while True:
        before = pos["x"]
        pos["x"] += ctx.config["rate"]
        yield {"score": pos["x"], "rate_used": ctx.config["rate"], "x_before": before}
