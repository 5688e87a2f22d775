"""Numeric dimensions: Float and Int, on a linear or a log scale."""

from __future__ import annotations

import abc
import math
from typing import Any

import numpy as np

from poptrain.errors import SpaceError
from poptrain.space import _values as V
from poptrain.space.base import Dimension


class _Numeric(Dimension):
    """Shared rules of Float and Int: bounds, log scale, and the perturbation step."""

    def __init__(self, low: Any, high: Any, log: bool) -> None:
        name = f"{type(self).__name__}(low={low!r}, high={high!r}, log={log!r})"
        if not isinstance(log, (bool, np.bool_)):
            raise SpaceError(f"{name}: log must be True or False, got {log!r}")
        low, high = self._bound(low, "low", name), self._bound(high, "high", name)
        if not low < high:
            raise SpaceError(f"{name}: low must be < high, got low={low!r}, high={high!r}")
        if log and low <= 0:
            raise SpaceError(f"{name}: a log scale needs low > 0, got low={low!r}")
        self.low, self.high, self.log = low, high, bool(log)

    @abc.abstractmethod
    def _bound(self, value: Any, which: str, name: str) -> Any: ...

    def _multiplicative(self, value: float) -> bool:
        # Multiplying keeps the sign and scales with the value, which is what
        # "20% more" means. It cannot move a zero or cross zero, so domains that
        # reach below zero (and a value sitting at zero) step by a fraction of
        # the range instead.
        return self.log or (self.low >= 0 and value > 0)

    def _moved(self, value: float, factor: float) -> float:
        if self._multiplicative(value):
            moved = value * factor
        elif factor == 1:
            moved = value
        else:
            moved = value + (factor - 1) * (float(self.high) - float(self.low))
        return V.clip(moved, float(self.low), float(self.high))

    def _unit(self, value: float) -> float:
        if self.log:
            return V.unlerp(math.log(self.low), math.log(self.high), math.log(max(value, self.low)))
        return V.unlerp(float(self.low), float(self.high), value)

    def _at(self, u: float) -> float:
        if u <= 0.0 or u >= 1.0:
            # exp(log(x)) is not always x; the ends of the domain must be exact.
            return float(self.low if u <= 0.0 else self.high)
        if self.log:
            return V.exp(V.lerp(math.log(self.low), math.log(self.high), u))
        return V.lerp(float(self.low), float(self.high), u)

    def to_json(self) -> dict[str, Any]:
        return {"type": self.kind, "low": self.low, "high": self.high, "log": self.log}

    def __repr__(self) -> str:
        log = ", log=True" if self.log else ""
        return f"{type(self).__name__}({self.low!r}, {self.high!r}{log})"


class Float(_Numeric):
    """A real-valued hyperparameter in ``[low, high]``.

    Perturbation multiplies by the factor when the value is above zero in a
    domain without negative values (always with ``log=True``, i.e. in log
    space); otherwise it adds ``(factor - 1) * (high - low)``. The result is
    clipped into the bounds. With ``log=True`` sampling is log-uniform.
    Values are always Python floats.

    Example:
        >>> import numpy as np
        >>> lr = Float(1e-5, 1e-1, log=True)
        >>> lr.perturb(1e-3, np.random.default_rng(0), 1.2)
        0.0012
    """

    kind = "float"

    def __init__(self, low: float, high: float, *, log: bool = False) -> None:
        super().__init__(low, high, log)

    def _bound(self, value: Any, which: str, name: str) -> float:
        if not V.is_real(value):
            raise SpaceError(f"{name}: {which} must be a number, got {value!r}")
        try:
            value = float(value)
        except OverflowError:
            value = math.inf
        if not math.isfinite(value):
            raise SpaceError(f"{name}: {which} must be finite, got {value!r}")
        return value

    def _clip(self, value: float) -> float:
        return float(V.clip(value, self.low, self.high))

    def sample(self, rng: np.random.Generator) -> float:
        return self._clip(self._at(float(rng.random())))

    def perturb(self, value: Any, rng: np.random.Generator, factor: float) -> float:
        factor = V.check_factor(factor, repr(self))
        if not V.is_real(value) or not math.isfinite(value):
            return self.sample(rng)
        return self._clip(self._moved(self._clip(float(value)), factor))

    def contains(self, value: Any) -> bool:
        # An int is a fine float (PEP 484's numeric tower), a bool is not.
        return V.is_real(value) and math.isfinite(value) and self.low <= value <= self.high

    def to_unit(self, value: Any) -> float:
        if not V.is_real(value) or math.isnan(value):
            raise SpaceError(f"{self!r}: cannot place {value!r} on the unit interval")
        return self._unit(self._clip(float(value)))

    def from_unit(self, u: float) -> float:
        return self._clip(self._at(V.check_unit(u, repr(self))))


class Int(_Numeric):
    """An integer hyperparameter in ``[low, high]``, both inclusive.

    Perturbation scales like :class:`Float` and then rounds; when rounding
    would give back the same integer it moves one step in the factor's
    direction, so small integers never get stuck. Bounds must lie within
    ``±2**53`` so that every integer in them is exactly a float.

    Example:
        >>> import numpy as np
        >>> Int(1, 64).perturb(2, np.random.default_rng(0), 1.2)
        3
    """

    kind = "int"
    _LIMIT = 2**53

    def __init__(self, low: int, high: int, *, log: bool = False) -> None:
        super().__init__(low, high, log)

    def _bound(self, value: Any, which: str, name: str) -> int:
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if not V.is_integer(value):
            raise SpaceError(f"{name}: {which} must be an integer, got {value!r}")
        value = int(value)
        if abs(value) > self._LIMIT:
            raise SpaceError(f"{name}: {which} must lie within ±2**53, got {value!r}")
        return value

    def _clip(self, value: float) -> int:
        return int(V.clip(round(V.clip(value, self.low, self.high)), self.low, self.high))

    def sample(self, rng: np.random.Generator) -> int:
        if self.log:
            # Widen by half a step on each side so the end values get a full
            # share of the log-uniform mass after rounding.
            u = float(rng.random())
            return self._clip(V.exp(V.lerp(math.log(self.low - 0.5), math.log(self.high + 0.5), u)))
        return int(rng.integers(self.low, self.high, endpoint=True))

    def perturb(self, value: Any, rng: np.random.Generator, factor: float) -> int:
        factor = V.check_factor(factor, repr(self))
        if not V.is_real(value) or not math.isfinite(value):
            return self.sample(rng)
        current = self._clip(float(value))
        moved = self._clip(self._moved(float(current), factor))
        if moved == current and factor != 1:
            moved = self._clip(current + (1 if factor > 1 else -1))
        return moved

    def contains(self, value: Any) -> bool:
        return V.is_integer(value) and self.low <= value <= self.high

    def to_unit(self, value: Any) -> float:
        if not V.is_real(value) or math.isnan(value):
            raise SpaceError(f"{self!r}: cannot place {value!r} on the unit interval")
        return self._unit(float(V.clip(float(value), self.low, self.high)))

    def from_unit(self, u: float) -> int:
        return self._clip(self._at(V.check_unit(u, repr(self))))
