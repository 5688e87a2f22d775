"""The whole population as one batched model: train, evaluate, exploit, save."""

from __future__ import annotations

import copy
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.func import vmap

from poptrain.errors import ConfigError, TrainableError
from poptrain.vectorized import hyperparams
from poptrain.vectorized.data import Batch
from poptrain.vectorized.optim import StackedOptimizer
from poptrain.vectorized.stack import StackedModel

LossFn = Callable[[Tensor, Tensor], Tensor]
EvalFn = Callable[[Tensor, Tensor], "Tensor | Mapping[str, Tensor]"]


class Population:
    """N members of one architecture with per-member optimizer hyperparameters.

    ``loss(outputs, targets)`` and ``evaluate(outputs, targets)`` are written
    for one model, as in a plain training loop; they are mapped over the
    members with ``vmap``. Everything stays on ``device``: the methods return
    ``[N]`` tensors and never wait for the device.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from poptrain.vectorized import SGD
        >>> pop = Population(model=lambda: nn.Linear(3, 2), loss=nn.functional.cross_entropy,
        ...                  optimizer=SGD(), configs=[{"lr": 0.1}, {"lr": 0.01}], seeds=[0, 1])
        >>> losses = pop.train_batch((torch.randn(8, 3), torch.randint(0, 2, (8,))))
        >>> losses.shape, pop.hp["lr"].tolist()
        (torch.Size([2]), [0.1, 0.01])
    """

    def __init__(self, *, model: Callable[[], nn.Module], loss: LossFn, optimizer: StackedOptimizer,
                 configs: Sequence[Mapping[str, Any]], seeds: Sequence[int],
                 device: str | torch.device = "cpu") -> None:
        if not isinstance(optimizer, StackedOptimizer):
            raise ConfigError(f"optimizer must be poptrain.vectorized.SGD, Adam or AdamW, got {optimizer!r}")
        self.optimizer = optimizer
        self.device = torch.device(device)
        self.configs: list[dict[str, Any]] = []
        values = hyperparams.member_values(configs, optimizer)  # bad configs fail before any model is built
        self.model = StackedModel.build(model, len(configs), seeds=seeds, device=self.device)
        self.n = self.model.n
        self.params = self.model.trainable_params()
        if not self.params:
            raise ConfigError("the model has no parameter that requires grad; there is nothing to train")
        self.state = optimizer.init_state(self.params)
        self.hp: dict[str, Tensor] = {}
        self._set(configs, values)
        self._loss = vmap(loss, in_dims=(0, None), randomness="different")

    def _set(self, configs: Sequence[Mapping[str, Any]], values: Sequence[Mapping[str, float]]) -> None:
        self.configs = [copy.deepcopy(dict(c)) for c in configs]
        self.hp = hyperparams.stack(values, self.optimizer.hyperparameters, self.device)

    def set_configs(self, configs: Sequence[Mapping[str, Any]]) -> None:
        """Give each member its config (and so its hyperparameters); ConfigError on a bad key."""
        if len(configs) != self.n:
            raise ConfigError(f"expected {self.n} configs, one per member, got {len(configs)}")
        self._set(configs, hyperparams.member_values(configs, self.optimizer))

    def train_batch(self, batch: Batch) -> Tensor:
        """One optimizer step of every member on ``batch``; returns each member's loss, ``[N]``."""
        *inputs, targets = batch
        outputs = self.model.forward(*inputs, train=True)
        losses = self._loss(outputs, targets)
        if losses.shape != (self.n,):
            raise TrainableError(f"the loss must return one scalar per model, got shape "
                                 f"{tuple(losses.shape[1:])} for each member")
        # Members share no parameter, so the gradient of the summed losses with
        # respect to row i of a stacked tensor is member i's own gradient.
        grads = torch.autograd.grad(losses.sum(), self.params, allow_unused=True)
        grads = [torch.zeros_like(p) if g is None else g for p, g in zip(self.params, grads)]
        with torch.no_grad():
            self.optimizer.step(self.params, grads, self.state, self.hp)
        return losses.detach()

    def train_epoch(self, batches: Iterable[Batch]) -> Tensor:
        """One pass over ``batches``; returns each member's mean training loss, ``[N]``."""
        total = torch.zeros(self.n, dtype=torch.float64, device=self.device)
        count = 0
        for batch in batches:
            size = batch[-1].shape[0]
            total += self.train_batch(batch).to(torch.float64) * size
            count += size
        if count == 0:
            raise ConfigError("train_data yielded no batch")
        return total / count

    @torch.no_grad()
    def evaluate(self, batches: Iterable[Batch], fn: EvalFn, *, name: str) -> dict[str, Tensor]:
        """``fn`` over ``batches`` for every member, averaged over examples; ``{metric: [N]}``.

        A tensor returned by ``fn`` is named ``name``; a dict keeps its keys.
        """
        mapped = vmap(fn, in_dims=(0, None), randomness="different")
        totals: dict[str, Tensor] = {}
        count = 0
        for batch in batches:
            *inputs, targets = batch
            values = mapped(self.model.forward(*inputs, train=False), targets)
            if isinstance(values, Tensor):
                values = {name: values}
            size = targets.shape[0]
            for key, value in values.items():
                if not isinstance(value, Tensor) or value.shape != (self.n,):
                    raise TrainableError(f"evaluate must return a scalar tensor (or a dict of them) per "
                                         f"model; {key!r} is {value!r}")
                value = value.to(torch.float64) * size
                totals[key] = totals[key] + value if key in totals else value
            count += size
        if count == 0:
            raise ConfigError("eval_data yielded no batch")
        return {k: v / count for k, v in totals.items()}

    @torch.no_grad()
    def exploit(self, sources: Sequence[int], configs: Sequence[Mapping[str, Any]]) -> None:
        """Member ``i`` takes member ``sources[i]``'s weights, buffers and optimizer state
        (all as they were before this call), then trains with ``configs[i]``.

        The state is copied before the config is applied, so the new
        hyperparameters win over anything carried by the donor.
        """
        if len(sources) != self.n or len(configs) != self.n:
            raise ConfigError(f"expected {self.n} sources and configs, got {len(sources)} and {len(configs)}")
        values = hyperparams.member_values(configs, self.optimizer)
        index = torch.as_tensor(list(sources), dtype=torch.long).to(self.device)
        self.model.gather_(index)
        for tensors in self.state.values():
            for t in tensors:
                t.copy_(t[index])
        self._set(configs, values)

    def member_state(self, member: int) -> dict[str, Any]:
        """Member ``member`` as one model: its ``state_dict``, optimizer state and hyperparameters."""
        return {
            "model": self.model.member_state_dict(member),
            "optimizer": {k: [t[member].clone() for t in ts] for k, ts in self.state.items()},
            "hyperparameters": {k: float(v[member]) for k, v in self.hp.items()},
        }

    def state_dict(self) -> dict[str, Any]:
        """The whole population as nested dicts of tensors (for ``poptrain.checkpoints``)."""
        return {
            "model": self.model.state_dict(),
            "optimizer": {"name": self.optimizer.name, "state": {k: list(v) for k, v in self.state.items()}},
            "configs": copy.deepcopy(self.configs),
        }

    @torch.no_grad()
    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state["optimizer"]["name"] != self.optimizer.name:
            raise ConfigError(f"the saved population was trained with {state['optimizer']['name']}, "
                              f"not {self.optimizer.name}")
        if len(state["configs"]) != self.n:
            raise ConfigError(f"the saved population has {len(state['configs'])} members, not {self.n}")
        self.model.load_state_dict(state["model"])
        for key, tensors in self.state.items():
            for mine, theirs in zip(tensors, state["optimizer"]["state"][key]):
                mine.copy_(theirs)
        self.set_configs(state["configs"])
