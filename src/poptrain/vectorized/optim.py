"""Optimizers over stacked parameters, with one hyperparameter value per member.

Every tensor here has the population as its leading dimension; a
hyperparameter is a float64 tensor of shape ``[N]``.

Why the update math is written out instead of calling
``torch.optim._functional.sgd``/``adam``: those take each hyperparameter as a
single Python float (``weight_decay`` and ``eps`` must be floats, ``lr`` and the
betas at most a 0-d tensor), so they can apply only one value to a whole
stacked tensor. Calling them once per member would bring back the per-member
Python loop this engine exists to remove. The steps below follow
``torch.optim.sgd._single_tensor_sgd`` and ``torch.optim.adam._single_tensor_adam``
operation for operation (same order, same bias corrections), on ``torch._foreach_*``
ops whose per-member scalars broadcast over each stacked tensor; the tests check
them against ``torch.optim.SGD``/``Adam``/``AdamW`` with one member.
"""

from __future__ import annotations

import abc
import math
from dataclasses import asdict, dataclass
from typing import ClassVar, Mapping, Sequence

import torch
from torch import Tensor

from poptrain.errors import ConfigError

State = dict[str, list[Tensor]]
"""Optimizer state: for each state name, one stacked tensor per parameter.

Per-member counters (Adam's ``step``) are stored as ``[N]`` float64 tensors
under names starting with ``"step"``.
"""


def per_member(value: Tensor, like: Tensor) -> Tensor:
    """``value`` (shape ``[N]``) cast to ``like``'s dtype and shaped to broadcast over it."""
    return value.to(like.dtype).reshape((-1,) + (1,) * (like.dim() - 1))


def _broadcast(value: Tensor, params: Sequence[Tensor]) -> list[Tensor]:
    return [per_member(value, p) for p in params]


class StackedOptimizer(abc.ABC):
    """An optimizer rule plus the default value of each hyperparameter.

    The defaults apply to every member whose config does not set the
    hyperparameter; a config sets it with a key of the same name (see
    :attr:`hyperparameters`).
    """

    hyperparameters: ClassVar[tuple[str, ...]]
    name: ClassVar[str]

    def defaults(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}  # type: ignore[call-overload]

    def check(self, values: Mapping[str, float], where: str) -> None:
        """Raise ConfigError naming the first hyperparameter torch would reject."""
        for key, value in values.items():
            if not math.isfinite(value):
                raise ConfigError(f"{where}: {self.name} {key} must be finite, got {value!r}")
        if values.get("lr", 0.0) < 0:
            raise ConfigError(f"{where}: {self.name} lr must be >= 0, got {values['lr']!r}")
        if values.get("weight_decay", 0.0) < 0:
            raise ConfigError(f"{where}: {self.name} weight_decay must be >= 0, got {values['weight_decay']!r}")

    @abc.abstractmethod
    def init_state(self, params: Sequence[Tensor]) -> State:
        """Fresh state for stacked ``params`` (all zeros: equivalent to torch's lazy init)."""

    @abc.abstractmethod
    def step(self, params: list[Tensor], grads: list[Tensor], state: State, hp: Mapping[str, Tensor]) -> None:
        """Update ``params`` and ``state`` in place; ``hp`` maps each hyperparameter to ``[N]``."""


@dataclass(frozen=True)
class SGD(StackedOptimizer):
    """SGD with momentum and L2 weight decay, as ``torch.optim.SGD`` (no dampening, nesterov off).

    Example:
        >>> SGD(lr=0.1, momentum=0.9).defaults()
        {'lr': 0.1, 'momentum': 0.9, 'weight_decay': 0.0}
    """

    lr: float = 0.01
    momentum: float = 0.0
    weight_decay: float = 0.0

    hyperparameters: ClassVar[tuple[str, ...]] = ("lr", "momentum", "weight_decay")
    name: ClassVar[str] = "SGD"

    def check(self, values: Mapping[str, float], where: str) -> None:
        super().check(values, where)
        if values.get("momentum", 0.0) < 0:
            raise ConfigError(f"{where}: SGD momentum must be >= 0, got {values['momentum']!r}")

    def init_state(self, params: Sequence[Tensor]) -> State:
        # torch starts the buffer as a copy of the first gradient; a zero buffer
        # gives the same first step (0 * momentum + grad) and keeps every slot
        # allocated, so an exploit can copy it.
        return {"momentum_buffer": [torch.zeros_like(p) for p in params]}

    def step(self, params: list[Tensor], grads: list[Tensor], state: State, hp: Mapping[str, Tensor]) -> None:
        bufs = state["momentum_buffer"]
        # torch: d_p = grad + wd * p; buf = momentum * buf + d_p; p -= lr * buf. The new
        # buffer is built in d_p (a fresh tensor) and swapped in: three passes over
        # the stacked state instead of five.
        d_p = torch._foreach_addcmul(grads, params, _broadcast(hp["weight_decay"], params))
        torch._foreach_addcmul_(d_p, bufs, _broadcast(hp["momentum"], params))
        bufs[:] = d_p
        torch._foreach_addcmul_(params, bufs, _broadcast(-hp["lr"], params))


@dataclass(frozen=True)
class Adam(StackedOptimizer):
    """Adam with L2 weight decay, as ``torch.optim.Adam`` (amsgrad off).

    Example:
        >>> Adam(lr=3e-4).defaults()["beta2"]
        0.999
    """

    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0

    hyperparameters: ClassVar[tuple[str, ...]] = ("lr", "beta1", "beta2", "eps", "weight_decay")
    name: ClassVar[str] = "Adam"
    decoupled: ClassVar[bool] = False

    def check(self, values: Mapping[str, float], where: str) -> None:
        super().check(values, where)
        for key in ("beta1", "beta2"):
            if key in values and not 0.0 <= values[key] < 1.0:
                raise ConfigError(f"{where}: {self.name} {key} must be in [0, 1), got {values[key]!r}")
        if values.get("eps", 1.0) < 0:
            raise ConfigError(f"{where}: {self.name} eps must be >= 0, got {values['eps']!r}")

    def init_state(self, params: Sequence[Tensor]) -> State:
        n = params[0].shape[0]
        return {
            "step": [torch.zeros(n, dtype=torch.float64, device=params[0].device)],
            "exp_avg": [torch.zeros_like(p) for p in params],
            "exp_avg_sq": [torch.zeros_like(p) for p in params],
        }

    def step(self, params: list[Tensor], grads: list[Tensor], state: State, hp: Mapping[str, Tensor]) -> None:
        exp_avgs, exp_avg_sqs = state["exp_avg"], state["exp_avg_sq"]
        step = state["step"][0]
        step.add_(1)
        lr, beta1, beta2, eps, wd = (hp[k] for k in ("lr", "beta1", "beta2", "eps", "weight_decay"))

        if self.decoupled:
            torch._foreach_mul_(params, _broadcast(1 - lr * wd, params))
        else:
            grads = torch._foreach_add(grads, torch._foreach_mul(params, _broadcast(wd, params)))

        torch._foreach_lerp_(exp_avgs, grads, _broadcast(1 - beta1, params))
        torch._foreach_mul_(exp_avg_sqs, _broadcast(beta2, params))
        torch._foreach_addcmul_(exp_avg_sqs, grads, torch._foreach_mul(grads, _broadcast(1 - beta2, params)))

        # The bias corrections are computed in float64 on [N], as torch computes
        # them in Python floats, and cast to the parameters' dtype only when applied.
        bias_correction1 = 1 - beta1**step
        bias_correction2_sqrt = (1 - beta2**step).sqrt()
        step_size = lr / bias_correction1

        denom = torch._foreach_sqrt(exp_avg_sqs)
        torch._foreach_div_(denom, _broadcast(bias_correction2_sqrt, params))
        torch._foreach_add_(denom, _broadcast(eps, params))
        update = torch._foreach_div(exp_avgs, denom)
        torch._foreach_mul_(update, _broadcast(-step_size, params))
        torch._foreach_add_(params, update)


@dataclass(frozen=True)
class AdamW(Adam):
    """AdamW (decoupled weight decay), as ``torch.optim.AdamW``.

    Example:
        >>> AdamW().defaults()["weight_decay"]
        0.01
    """

    weight_decay: float = 1e-2

    name: ClassVar[str] = "AdamW"
    decoupled: ClassVar[bool] = True


OPTIMIZER_KEYS: frozenset[str] = frozenset(SGD.hyperparameters + Adam.hyperparameters)
