"""PBT with numpy alone: logistic regression by mini-batch SGD on generated data.

No deep-learning framework: the core needs only numpy. Learning rate (log)
and L2 strength are explored; one step = one epoch.

    poptrain run examples/numpy_logistic.py
"""

from __future__ import annotations

import numpy as np

import poptrain as pt
from poptrain.algorithms import PBT
from poptrain.space import Float, Ordered

_rng = np.random.default_rng(0)
_W_TRUE = _rng.normal(size=20)
X = _rng.normal(size=(2000, 20))
Y = (X @ _W_TRUE + 0.5 * _rng.normal(size=2000) > 0).astype(float)
XT, YT, XV, YV = X[:1500], Y[:1500], X[1500:], Y[1500:]


class Logistic:
    def __init__(self, config: dict) -> None:
        self.w = np.zeros(20)
        self.epoch = 0
        self.apply_config(config)

    def apply_config(self, config: dict) -> None:
        self.lr, self.l2, self.batch = config["lr"], config["l2"], config["batch"]

    def step(self) -> dict[str, float]:
        order = np.random.default_rng(self.epoch).permutation(len(XT))
        for i in range(0, len(XT), self.batch):
            idx = order[i : i + self.batch]
            p = 1 / (1 + np.exp(-XT[idx] @ self.w))
            self.w -= self.lr * (XT[idx].T @ (p - YT[idx]) / len(idx) + self.l2 * self.w)
        self.epoch += 1
        pv = 1 / (1 + np.exp(-XV @ self.w))
        eps = 1e-12
        loss = -np.mean(YV * np.log(pv + eps) + (1 - YV) * np.log(1 - pv + eps))
        return {"val_loss": float(loss), "accuracy": float(np.mean((pv > 0.5) == YV))}

    def state_dict(self) -> dict:
        return {"w": self.w, "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.w = np.array(state["w"], dtype=float)
        self.epoch = int(state["epoch"])


experiment = pt.Experiment(
    name="numpy-logistic",
    trainable=Logistic,
    space={"lr": Float(1e-4, 1.0, log=True), "l2": Float(1e-6, 1e-1, log=True), "batch": Ordered([16, 32, 64, 128])},
    metric="val_loss",
    mode="min",
    strategy=PBT(interval=3),
    population=6,
    budget=30,
    seed=0,
)
