"""N copies of one model, their parameters and buffers stacked along a leading dimension."""

from __future__ import annotations

import copy
from typing import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from poptrain.errors import ConfigError


class StackedModel:
    """A population of one architecture as a single functional model.

    ``params`` and ``buffers`` map each of the module's names to a tensor of
    shape ``[N, *shape]``; row ``i`` is member ``i``. :meth:`forward` runs every
    member on the same inputs in one batched call and returns ``[N, ...]``.

    Example:
        >>> from torch import nn
        >>> import torch
        >>> stacked = StackedModel([nn.Linear(3, 2) for _ in range(4)], device="cpu")
        >>> stacked.forward(torch.zeros(5, 3), train=False).shape
        torch.Size([4, 5, 2])
    """

    def __init__(self, modules: Sequence[nn.Module], *, device: str | torch.device) -> None:
        if not modules:
            raise ConfigError("a population needs at least one member, got 0 models")
        first = modules[0]
        if not isinstance(first, nn.Module):
            raise ConfigError(f"the model factory must return a torch.nn.Module, got {type(first).__name__}")
        names = [n for n, _ in first.named_parameters()]
        for m in modules[1:]:
            if [n for n, _ in m.named_parameters()] != names:
                raise ConfigError("the model factory must return the same architecture every call "
                                  "(the members' parameter names differ)")
        params, buffers = stack_module_state(list(modules))
        self.n = len(modules)
        self.device = torch.device(device)
        self.trainable: list[str] = [n for n, p in first.named_parameters() if p.requires_grad]
        self.params: dict[str, Tensor] = {
            k: v.detach().to(self.device).requires_grad_(k in self.trainable) for k, v in params.items()
        }
        self.buffers: dict[str, Tensor] = {k: v.detach().to(self.device) for k, v in buffers.items()}
        # The stacked tensors carry the values; the module only supplies the code.
        self._base = copy.deepcopy(first).to("meta")
        self._vmapped: dict[int, Callable[..., Tensor]] = {}

    @classmethod
    def build(cls, factory: Callable[[], nn.Module], n: int, *, seeds: Sequence[int],
              device: str | torch.device) -> "StackedModel":
        """Call ``factory`` ``n`` times, member ``i`` under ``torch.manual_seed(seeds[i])``.

        The global torch generator is left as it was.
        """
        modules = []
        with torch.random.fork_rng(devices=[]):
            for i in range(n):
                torch.manual_seed(int(seeds[i]))
                modules.append(factory())
        return cls(modules, device=device)

    def _call(self, params: dict[str, Tensor], buffers: dict[str, Tensor], *inputs: Tensor) -> Tensor:
        return functional_call(self._base, (params, buffers), inputs)

    def forward(self, *inputs: Tensor, train: bool) -> Tensor:
        """All members on the same ``inputs``; dropout masks differ between members."""
        fn = self._vmapped.get(len(inputs))
        if fn is None:
            in_dims = (0, 0) + (None,) * len(inputs)
            fn = vmap(self._call, in_dims=in_dims, randomness="different")
            self._vmapped[len(inputs)] = fn
        self._base.train(train)
        return fn(self.params, self.buffers, *inputs)

    def trainable_params(self) -> list[Tensor]:
        return [self.params[k] for k in self.trainable]

    def member_state_dict(self, member: int) -> dict[str, Tensor]:
        """Member ``member`` as a plain module's ``state_dict`` (detached copies)."""
        out = {k: v[member].detach().clone() for k, v in self.params.items()}
        out.update({k: v[member].detach().clone() for k, v in self.buffers.items()})
        return out

    @torch.no_grad()
    def gather_(self, source: Tensor) -> None:
        """Row ``i`` becomes the old row ``source[i]``, for every parameter and buffer."""
        for t in list(self.params.values()) + list(self.buffers.values()):
            t.copy_(t[source])

    def state_dict(self) -> dict[str, dict[str, Tensor]]:
        return {"params": {k: v.detach() for k, v in self.params.items()},
                "buffers": dict(self.buffers)}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, dict[str, Tensor]]) -> None:
        for group, mine in (("params", self.params), ("buffers", self.buffers)):
            theirs = state[group]
            if set(theirs) != set(mine):
                raise ConfigError(f"the saved population's {group} {sorted(theirs)} do not match "
                                  f"the model's {sorted(mine)}")
            for k, v in theirs.items():
                if v.shape != mine[k].shape:
                    raise ConfigError(f"the saved population's {k} has shape {tuple(v.shape)}, "
                                      f"the model's {tuple(mine[k].shape)}")
                mine[k].copy_(v)
