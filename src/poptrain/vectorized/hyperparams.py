"""From members' configs to per-member hyperparameter tensors of shape ``[N]``."""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Sequence

import torch
from torch import Tensor

from poptrain.errors import ConfigError
from poptrain.vectorized.optim import OPTIMIZER_KEYS, StackedOptimizer

# Keys a user may well put in a space, with the reason the engine cannot vary
# them per member: all members share one forward pass over one batch.
_SHARED_PER_BATCH = {
    "batch_size": "every member trains on the same batches; pass batch_size= to the engine instead",
    "epochs": "every member trains for the same number of steps; pass budget= instead",
}


def _leaves(config: Mapping[str, Any], path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    for key, value in config.items():
        if isinstance(value, Mapping):
            yield from _leaves(value, path + (key,))
        else:
            yield path + (key,), value


def config_values(config: Mapping[str, Any], optimizer: StackedOptimizer) -> dict[str, float]:
    """The optimizer hyperparameters ``config`` sets, by name.

    A leaf named like a hyperparameter of ``optimizer`` sets it, at any depth
    (``{"lr": …}`` or ``{"optimizer": {"lr": …}}``). Any other leaf raises
    ConfigError naming it: the engine would otherwise silently ignore it.
    """
    found: dict[str, float] = {}
    where: dict[str, str] = {}
    for path, value in _leaves(config):
        key, shown = path[-1], ".".join(path)
        if key in optimizer.hyperparameters:
            if key in found:
                raise ConfigError(f"the config sets {key!r} twice ({where[key]!r} and {shown!r})")
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"config key {shown!r} must be a number, got {value!r}")
            found[key], where[key] = float(value), shown
        elif key in _SHARED_PER_BATCH:
            raise ConfigError(f"config key {shown!r} cannot vary per member in the vectorized engine: "
                              f"{_SHARED_PER_BATCH[key]}")
        elif key in OPTIMIZER_KEYS:
            raise ConfigError(f"config key {shown!r} is not a hyperparameter of {optimizer.name}, "
                              f"whose hyperparameters are {list(optimizer.hyperparameters)}")
        else:
            raise ConfigError(f"config key {shown!r} cannot vary per member in the vectorized engine: "
                              f"it varies only the optimizer's hyperparameters "
                              f"{list(optimizer.hyperparameters)} (one model architecture and one batch "
                              f"for all members)")
    return found


def member_values(configs: Sequence[Mapping[str, Any]], optimizer: StackedOptimizer) -> list[dict[str, float]]:
    """Each member's full set of hyperparameters: its config over the optimizer's defaults."""
    out = []
    for i, config in enumerate(configs):
        values = {**optimizer.defaults(), **config_values(config, optimizer)}
        optimizer.check(values, f"member {i}")
        out.append(values)
    return out


def stack(values: Sequence[Mapping[str, float]], names: Sequence[str], device: torch.device) -> dict[str, Tensor]:
    """``{name: float64 tensor [N]}`` on ``device``."""
    return {k: torch.tensor([v[k] for v in values], dtype=torch.float64, device=device) for k in names}

