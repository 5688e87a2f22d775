"""The toy problem of the PBT paper (Jaderberg et al. 2017, section 4.3 / figure 2).

Maximise Q(theta) = 1.2 - (theta0^2 + theta1^2). Each member only sees a
surrogate Q_hat(theta | h) = 1.2 - (h0 * theta0^2 + h1 * theta1^2) and does
gradient ascent on it; theta starts at [0.9, 0.9] and the two members start
with h = [1, 0] and h = [0, 1]. Alone, neither can move both coordinates, so
Q stays at 1.2 - 0.81 = 0.39; with exploit and explore the pair reaches the
optimum 1.2.

    poptrain run examples/quadratic.py          # the PBT run
    python examples/quadratic.py                # PBT against the same run without exploit/explore
"""

from __future__ import annotations

import numpy as np

import poptrain as pt
from poptrain.algorithms import PBT, Perturb, Truncation
from poptrain.space import Float

STEP_SIZE = 0.05


class Quadratic:
    def __init__(self, config: dict) -> None:
        self.theta = np.array([0.9, 0.9])
        self.h = np.array([config["h0"], config["h1"]])

    def apply_config(self, config: dict) -> None:
        self.h = np.array([config["h0"], config["h1"]])

    def step(self) -> dict[str, float]:
        self.theta = self.theta + STEP_SIZE * (-2.0 * self.h * self.theta)
        return {"Q": float(1.2 - np.sum(self.theta**2))}

    def state_dict(self) -> dict:
        return {"theta": self.theta}

    def load_state_dict(self, state: dict) -> None:
        self.theta = np.asarray(state["theta"], dtype=float).copy()


def make_experiment(*, name: str = "quadratic", exploit: bool = True, seed: int = 0) -> pt.Experiment:
    # Generations (synchronous): the two members start as mirror images with
    # equal scores, so in async mode whether one copies the other would depend
    # on which happens to reach a ready point second.
    strategy = PBT(interval=4, selection=Truncation(0.5), explore=Perturb(), synchronous=True)
    if not exploit:
        # Ready points far beyond the budget: members train alone.
        strategy = PBT(interval=10**9)
    return pt.Experiment(
        name=name,
        trainable=Quadratic,
        space={"h0": Float(0.0, 1.0), "h1": Float(0.0, 1.0)},
        metric="Q",
        mode="max",
        strategy=strategy,
        population=2,
        budget=200,
        seed=seed,
        initial_configs=[{"h0": 1.0, "h1": 0.0}, {"h0": 0.0, "h1": 1.0}],
    )


experiment = make_experiment()


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for label, exploit in (("PBT", True), ("no exploit/explore", False)):
            res = pt.run(make_experiment(name=label, exploit=exploit), storage=f"sqlite:///{tmp}/q.db",
                         checkpoints=f"{tmp}/ckpt", workers=1, executor="inline")
            print(f"{label:>20}: best Q = {res.best['score']:.4f}")
