"""The tasks of ``bench/quality.py``: what to train, what to tune, the target score.

Each task is a :class:`Task`; ``TASKS`` maps its name to it. The trainables
come from ``examples/`` where one exists, seeded from their config so that a
benchmark run is reproducible.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, Callable


def config_seed(config: dict[str, Any]) -> int:
    """A seed fixed by the config (trainables have no seed in their space)."""
    return zlib.crc32(repr(sorted(config.items())).encode())


@dataclass(frozen=True)
class Task:
    """One benchmark problem.

    Attributes:
        budget / quick_budget: steps per member in a full / quick run.
        populations: population sizes benchmarked (the quick run uses them all too).
        target: the score whose first crossing counts as "time to target".
        initial_configs: start configs for a population size, or None to sample them.
    """

    name: str
    title: str
    trainable: Callable[[], type]
    space: Callable[[], dict[str, Any]]
    metric: str
    mode: str
    interval: int
    budget: int
    quick_budget: int
    populations: tuple[int, ...]
    target: float
    seeds: int
    quick_seeds: int
    initial_configs: Callable[[int], list[dict[str, Any]]] | None = None
    notes: str = ""
    selection_fraction: float = 0.25
    extra: dict[str, Any] = field(default_factory=dict)


def _toy_trainable() -> type:
    from examples.quadratic import Quadratic

    return Quadratic


def _toy_space() -> dict[str, Any]:
    from poptrain.space import Float

    return {"h0": Float(0.0, 1.0), "h1": Float(0.0, 1.0)}


def _toy_initial(population: int) -> list[dict[str, Any]]:
    return [{"h0": 1.0, "h1": 0.0}, {"h0": 0.0, "h1": 1.0}][:population]


def _digits_trainable() -> type:
    from tasks.digits import SeededDigitsMLP

    return SeededDigitsMLP


def _digits_space() -> dict[str, Any]:
    from examples.digits import experiment

    return {".".join(path): dim for path, dim in experiment.space.dimensions.items()}


def _cartpole_trainable() -> type:
    from tasks.cartpole import CartPolePPO

    return CartPolePPO


def _cartpole_space() -> dict[str, Any]:
    from tasks.cartpole import SPACE

    return dict(SPACE)


TASKS: dict[str, Task] = {
    "toy": Task(
        name="toy", title="Toy quadratic (PBT paper, Q = 1.2 − |θ|²)", trainable=_toy_trainable, space=_toy_space,
        metric="Q", mode="max", interval=4, budget=200, quick_budget=200, populations=(2,), target=1.19,
        seeds=10, quick_seeds=3, initial_configs=_toy_initial, selection_fraction=0.5,
        notes="Both members start from the paper's h = (1, 0) and (0, 1), so 'random search' here is the "
              "paper's no-exploit baseline (members train alone from those configs). The two start configs are "
              "mirror images and give exactly equal scores, so binary tournament selection (which copies only a "
              "strictly better member) never exploits; truncation breaks the tie by member id.",
    ),
    "digits": Task(
        name="digits", title="Digits MLP (validation accuracy; one step = one epoch)", trainable=_digits_trainable,
        space=_digits_space, metric="accuracy", mode="max", interval=4, budget=40, quick_budget=20,
        populations=(4, 8), target=0.97, seeds=5, quick_seeds=2,
    ),
    "cartpole": Task(
        name="cartpole", title="CartPole-v1 PPO (greedy return; one step = one PPO iteration of 1,024 env steps)",
        trainable=_cartpole_trainable, space=_cartpole_space, metric="return", mode="max", interval=4,
        budget=40, quick_budget=16, populations=(4,), target=475.0, seeds=5, quick_seeds=2,
    ),
}
