"""How PB2 places configs in the unit cube its Gaussian process works in, and back."""

from __future__ import annotations

import copy
from typing import Any, Mapping

import numpy as np

from poptrain.errors import ConfigError, SpaceError
from poptrain.space import Choice, Float, Int, Ordered, Space


class Encoding:
    """The space's tunable values as GP coordinates in [0, 1], and back.

    Numeric dimensions and ordered choices take one coordinate (their unit
    position); an unordered choice with k values takes k one-hot coordinates.
    """

    def __init__(self, space: Space) -> None:
        if not isinstance(space, Space):
            raise ConfigError(f"PB2 needs a poptrain.space.Space. Got {space!r} instead.")
        self.space = space
        self.parts: list[tuple[tuple[str, ...], Any, int, int]] = []  # (path, dim, first column, width)
        width = 0
        for path, dim in space.dimensions.items():
            if isinstance(dim, (Float, Int)):
                w = 1
            elif isinstance(dim, Ordered):
                w = 1 if len(dim.values) > 1 else 0
            elif isinstance(dim, Choice):
                w = len(dim.values) if len(dim.values) > 1 else 0
            else:
                raise ConfigError(
                    f"PB2 cannot model the dimension {'.'.join(path)!r} of type {type(dim).__name__}; "
                    f"it models Float, Int, Ordered and Choice (use another explore for this space)"
                )
            self.parts.append((path, dim, width, w))
            width += w
        if width == 0:
            raise ConfigError(
                f"PB2 needs a space with at least one tunable dimension (a Float, an Int, or a choice of two "
                f"or more values); this one has {[('.'.join(p), repr(d)) for p, d in space.dimensions.items()]}"
            )
        self.width = width
        # The length-scale index of each column: one per modelled dimension.
        self.groups = [g for g, (_, _, _, w) in enumerate(p for p in self.parts if p[3]) for _ in range(w)]
        self._choice = np.zeros(width, dtype=bool)
        for _, dim, start, w in self.parts:
            if isinstance(dim, Choice):
                self._choice[start:start + w] = True

    def encode(self, config: Mapping[str, Any]) -> np.ndarray:
        u = np.zeros(self.width)
        for path, dim, start, w in self.parts:
            if w == 0:
                continue
            value = self.space.get(config, path)
            if isinstance(dim, Choice):
                i = dim.index(value)
                if i is None:
                    raise SpaceError(f"{'.'.join(path)!r}: {value!r} is not one of {list(dim.values)}")
                u[start + i] = 1.0
            else:
                u[start] = dim.to_unit(value)
        return u

    def decode(self, u: np.ndarray, base: Mapping[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(dict(base))
        for path, dim, start, w in self.parts:
            if w == 0:
                value = dim.values[0]  # a choice of one value
            elif isinstance(dim, Choice):
                value = dim.values[int(np.argmax(u[start:start + w]))]
            else:
                value = dim.from_unit(float(min(max(u[start], 0.0), 1.0)))
            out = self.space.with_value(out, path, value)
        return out

    def snap(self, U: np.ndarray) -> np.ndarray:
        """Each row moved to the nearest point the space can take (rounded ints, one-hot choices)."""
        U = np.clip(U, 0.0, 1.0)
        for _, dim, start, w in self.parts:
            if w == 0:
                continue
            col = U[:, start]
            if isinstance(dim, Choice):
                block = U[:, start:start + w]
                hot = np.zeros_like(block)
                hot[np.arange(len(U)), np.argmax(block, axis=1)] = 1.0
                U[:, start:start + w] = hot
            elif isinstance(dim, Ordered):
                k = len(dim.values) - 1
                U[:, start] = np.round(col * k) / k
            elif isinstance(dim, Int):
                U[:, start] = _snap_int(dim, col)
        return U

    def random(self, n: int, rng: np.random.Generator) -> np.ndarray:
        U = rng.random((n, self.width))
        return self.snap(U)

    def neighbours(self, points: np.ndarray, moves: int, radius: float, rng: np.random.Generator) -> np.ndarray:
        """``moves`` random neighbours of each point, shape (len(points), moves, width)."""
        near = np.repeat(points[:, None, :], moves, axis=1) + rng.normal(0.0, radius, (len(points), moves, self.width))
        near[..., self._choice] = np.repeat(points[:, None, :], moves, axis=1)[..., self._choice]
        for _, dim, start, w in self.parts:
            if w and isinstance(dim, Choice):
                switch = rng.random((len(points), moves)) < 0.25
                new = rng.integers(w, size=(len(points), moves))
                block = near[:, :, start:start + w]
                block[switch] = np.eye(w)[new[switch]]
        flat = self.snap(near.reshape(-1, self.width))
        return flat.reshape(len(points), moves, self.width)


def _snap_int(dim: Int, u: np.ndarray) -> np.ndarray:
    """``to_unit(from_unit(u))`` of an Int, for many ``u`` at once."""
    lo, hi = float(dim.low), float(dim.high)
    if dim.log:
        value = np.exp(np.log(lo) + u * (np.log(hi) - np.log(lo)))
    else:
        value = lo + u * (hi - lo)
    value = np.clip(np.round(np.clip(value, lo, hi)), lo, hi)
    value = np.where(u <= 0.0, lo, np.where(u >= 1.0, hi, value))
    if dim.log:
        return (np.log(value) - np.log(lo)) / (np.log(hi) - np.log(lo))
    return (value - lo) / (hi - lo)
