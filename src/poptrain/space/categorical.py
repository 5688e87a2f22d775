"""Categorical dimensions: unordered Choice and Ordered."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from poptrain.errors import SpaceError
from poptrain.space import _values as V
from poptrain.space.base import Dimension


def _strict_key(value: Any) -> tuple[str, Any]:
    """Equality that tells 1, 1.0 and True apart, as a config must."""
    return (type(value).__name__, value)


def _loose_key(value: Any) -> tuple[str, Any]:
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return ("number", float(value))
    return (type(value).__name__, value)


class _Categorical(Dimension):
    def __init__(self, values: Sequence[Any]) -> None:
        name = f"{type(self).__name__}({values!r})"
        if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, (Sequence, np.ndarray)):
            raise SpaceError(f"{name}: values must be a list, got {values!r}")
        values = [V.check_json_scalar(v, name) for v in values]
        if not values:
            raise SpaceError(f"{name}: needs at least one value")
        seen: dict[tuple[str, Any], Any] = {}
        for v in values:
            key = _loose_key(v)
            if key in seen:
                raise SpaceError(f"{name}: duplicate value {v!r} (equal to {seen[key]!r})")
            seen[key] = v
        self.values: tuple[Any, ...] = tuple(values)
        self._index = {_strict_key(v): i for i, v in enumerate(values)}

    def index(self, value: Any) -> int | None:
        """The position of ``value`` in ``values``, or None when it is not one of them."""
        value = V.plain(value)
        try:
            return self._index.get(_strict_key(value))
        except TypeError:
            return None

    def sample(self, rng: np.random.Generator) -> Any:
        return self.values[int(rng.integers(len(self.values)))]

    def contains(self, value: Any) -> bool:
        return self.index(value) is not None

    def to_unit(self, value: Any) -> float:
        i = self.index(value)
        if i is None:
            raise SpaceError(f"{self!r}: {value!r} is not one of the values")
        n = len(self.values)
        return 0.5 if n == 1 else i / (n - 1)

    def from_unit(self, u: float) -> Any:
        u = V.check_unit(u, repr(self))
        return self.values[int(round(u * (len(self.values) - 1)))]

    def to_json(self) -> dict[str, Any]:
        return {"type": self.kind, "values": list(self.values)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self.values)!r})"


class Choice(_Categorical):
    """An unordered categorical hyperparameter (JSON scalar values).

    Perturbation resamples uniformly, since "a bit more" means nothing for
    unordered values.

    Example:
        >>> import numpy as np
        >>> Choice(["adam", "sgd"]).perturb("adam", np.random.default_rng(0), 1.2) in ("adam", "sgd")
        True
    """

    kind = "choice"

    def perturb(self, value: Any, rng: np.random.Generator, factor: float) -> Any:
        V.check_factor(factor, repr(self))
        return self.sample(rng)


class Ordered(_Categorical):
    """A categorical hyperparameter whose values have an order (e.g. batch sizes).

    Perturbation moves to the neighbouring value: down for ``factor < 1``, up
    for ``factor > 1``, staying put at the ends. A value not in the list is
    replaced by a uniformly chosen one.

    Example:
        >>> import numpy as np
        >>> Ordered([3, 4, 8, 10]).perturb(4, np.random.default_rng(0), 1.2)
        8
    """

    kind = "ordered"

    def perturb(self, value: Any, rng: np.random.Generator, factor: float) -> Any:
        factor = V.check_factor(factor, repr(self))
        i = self.index(value)
        if i is None:
            return self.sample(rng)
        step = 0 if factor == 1 else (1 if factor > 1 else -1)
        return self.values[min(max(i + step, 0), len(self.values) - 1)]
