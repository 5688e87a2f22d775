"""Training and evaluation data as batches on the engine's device.

Every member sees the same batches in the same order: that is what lets one
batched forward pass serve the whole population.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Sequence

import torch
from torch import Tensor

from poptrain.errors import ConfigError

Batch = tuple[Tensor, ...]


def _is_tensors(data: Any) -> bool:
    return isinstance(data, (tuple, list)) and len(data) > 0 and all(isinstance(t, Tensor) for t in data)


class Batches:
    """A re-iterable source of batches ``(inputs..., targets)`` on ``device``.

    ``data`` is either a tuple of tensors with one row per example (split into
    batches of ``batch_size``, reshuffled each epoch when ``shuffle``), or a
    re-iterable of such batches (a list, a ``DataLoader``), moved to
    ``device`` batch by batch. The last tensor of a batch is the target.

    Example:
        >>> import torch
        >>> data = Batches((torch.zeros(10, 3), torch.zeros(10)), batch_size=4, shuffle=False,
        ...                device="cpu", name="train_data")
        >>> [len(b[0]) for b in data.epoch(seed=0)]
        [4, 4, 2]
    """

    def __init__(self, data: Sequence[Tensor] | Iterable[Sequence[Tensor]], *, batch_size: int | None,
                 shuffle: bool, device: torch.device | str, name: str) -> None:
        self.device = torch.device(device)
        self.name = name
        self.shuffle = shuffle
        self.tensors: tuple[Tensor, ...] | None = None
        self.iterable: Iterable[Sequence[Tensor]] | None = None
        if _is_tensors(data):
            tensors = tuple(data)  # type: ignore[arg-type]
            if len(tensors) < 2:
                raise ConfigError(f"{name} must hold inputs and targets (at least 2 tensors), got {len(tensors)}")
            n = tensors[0].shape[0] if tensors[0].dim() else 0
            if n == 0 or any(t.dim() == 0 or t.shape[0] != n for t in tensors):
                raise ConfigError(f"{name}: the tensors must share a non-empty first dimension, got shapes "
                                  f"{[tuple(t.shape) for t in tensors]}")
            if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                           or batch_size < 1):
                raise ConfigError(f"batch_size must be a positive int or None, got {batch_size!r}")
            self.tensors = tuple(t.to(self.device) for t in tensors)
            self.batch_size = batch_size or n
        elif isinstance(data, Iterable) and not isinstance(data, (str, bytes, Tensor)):
            if iter(data) is data:
                raise ConfigError(f"{name} is a one-shot iterator, which would be empty after the first "
                                  f"epoch; pass a list, a DataLoader or a tuple of tensors")
            self.iterable = data
            self.batch_size = batch_size or 0
        else:
            raise ConfigError(f"{name} must be a tuple of tensors (inputs..., targets) or a re-iterable of "
                              f"such batches, got {type(data).__name__}")

    def epoch(self, *, seed: int) -> Iterator[Batch]:
        """One pass over the data; ``seed`` fixes this epoch's shuffle."""
        if self.tensors is not None:
            n = self.tensors[0].shape[0]
            if self.shuffle:
                gen = torch.Generator(device=self.device)
                gen.manual_seed(int(seed))
                order = torch.randperm(n, generator=gen, device=self.device)
            for start in range(0, n, self.batch_size):
                if self.shuffle:
                    idx = order[start:start + self.batch_size]
                    yield tuple(t[idx] for t in self.tensors)
                else:
                    yield tuple(t[start:start + self.batch_size] for t in self.tensors)
            return
        assert self.iterable is not None
        for i, batch in enumerate(self.iterable):
            if not isinstance(batch, (tuple, list)) or len(batch) < 2 or not all(isinstance(t, Tensor) for t in batch):
                raise ConfigError(f"{self.name}: batch {i} must be a tuple (inputs..., targets) of tensors, "
                                  f"got {type(batch).__name__}")
            yield tuple(t.to(self.device, non_blocking=True) for t in batch)
