"""A torch MLP on scikit-learn's bundled digits, tuned by PBT.

Population 8; learning rate (log scale), momentum and weight decay explored;
one step = one epoch; 40 epochs per member.

    poptrain run examples/digits.py
"""

from __future__ import annotations

import poptrain as pt
from poptrain.algorithms import PBT
from poptrain.space import Float

_DATA = None


def data():  # noqa: ANN201
    """The fixed train/validation split, built once per process."""
    global _DATA
    if _DATA is None:
        import torch
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        x, y = load_digits(return_X_y=True)
        x = x / 16.0
        xt, xv, yt, yv = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
        _DATA = tuple(torch.as_tensor(a, dtype=torch.float32 if a.ndim == 2 else torch.long) for a in (xt, yt, xv, yv))
    return _DATA


class DigitsMLP:
    """64-128-10 MLP trained with SGD; ``apply_config`` sets the optimizer's hyperparameters in place."""

    batch_size = 64

    def __init__(self, config: dict) -> None:
        import torch

        torch.set_num_threads(1)
        self.torch = torch
        self.model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
        self.opt = torch.optim.SGD(self.model.parameters(), lr=config["lr"], momentum=config["momentum"],
                                   weight_decay=config["weight_decay"])
        self.epoch = 0
        self.apply_config(config)

    def apply_config(self, config: dict) -> None:
        for group in self.opt.param_groups:
            group["lr"] = config["lr"]
            group["momentum"] = config["momentum"]
            group["weight_decay"] = config["weight_decay"]

    def step(self) -> dict[str, float]:
        torch = self.torch
        xt, yt, xv, yv = data()
        g = torch.Generator().manual_seed(self.epoch)
        order = torch.randperm(len(xt), generator=g)
        self.model.train()
        for i in range(0, len(xt), self.batch_size):
            idx = order[i : i + self.batch_size]
            self.opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(self.model(xt[idx]), yt[idx])
            loss.backward()
            self.opt.step()
        self.epoch += 1
        self.model.eval()
        with torch.no_grad():
            logits = self.model(xv)
            val_loss = torch.nn.functional.cross_entropy(logits, yv).item()
            acc = (logits.argmax(1) == yv).float().mean().item()
        return {"accuracy": acc, "val_loss": val_loss, "train_loss": float(loss.item())}

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "opt": self.opt.state_dict(), "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.epoch = state["epoch"]


experiment = pt.Experiment(
    name="digits",
    trainable=DigitsMLP,
    space={
        "lr": Float(1e-3, 0.3, log=True),
        "momentum": Float(0.0, 0.95),
        "weight_decay": Float(1e-6, 1e-2, log=True),
    },
    metric="accuracy",
    mode="max",
    strategy=PBT(interval=4),
    population=8,
    budget=40,
    seed=0,
)
