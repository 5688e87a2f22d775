"""Checks and arithmetic on the plain values a space holds.

Kept apart from the dimensions so that their code reads as the rules of each
domain, while the care needed at the edges of floating point (huge spans,
overflowing exponentials, NaN slipping through ``min``/``max``) lives here.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from poptrain.errors import SpaceError

JSON_SCALARS = (str, int, float, bool, type(None))


def is_real(value: Any) -> bool:
    """A real number that is not a bool (``True`` is an int in Python, never a hyperparameter value)."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def is_integer(value: Any) -> bool:
    """A Python or numpy integer that is not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def plain(value: Any) -> Any:
    """Numpy scalars as their Python equivalent, so every value is a JSON value."""
    return value.item() if isinstance(value, np.generic) else value


def check_json_scalar(value: Any, where: str) -> Any:
    """``value`` as a plain JSON scalar, or SpaceError naming ``where``."""
    value = plain(value)
    if not isinstance(value, JSON_SCALARS):
        raise SpaceError(f"{where}: {value!r} is not a JSON value (str, int, float, bool or None)")
    if isinstance(value, float) and not math.isfinite(value):
        raise SpaceError(f"{where}: {value!r} is not finite, which JSON cannot store")
    return value


def check_json_value(value: Any, where: str) -> Any:
    """A deep copy of ``value`` made of plain JSON values (tuples become lists)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise SpaceError(f"{where}: key {key!r} is not a string")
            out[key] = check_json_value(item, f"{where}.{key}")
        return out
    if isinstance(value, (list, tuple)):
        return [check_json_value(item, f"{where}[{i}]") for i, item in enumerate(value)]
    return check_json_scalar(value, where)


def clip(value: float, low: float, high: float) -> float:
    if math.isnan(value):
        raise SpaceError(f"a NaN value cannot be placed into [{low}, {high}]")
    return min(max(value, low), high)


def lerp(low: float, high: float, u: float) -> float:
    """``low + u * (high - low)`` without overflowing when the span exceeds the largest float."""
    span = high - low
    if math.isfinite(span):
        return low + u * span
    return (1.0 - u) * low + u * high


def unlerp(low: float, high: float, value: float) -> float:
    """The position of ``value`` in ``[low, high]``, clipped into ``[0, 1]``."""
    span = high - low
    if not math.isfinite(span):
        value, low, span = value / 2, low / 2, high / 2 - low / 2
    if span == 0:
        return 0.5
    return clip((value - low) / span, 0.0, 1.0)


def exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def check_unit(u: Any, where: str) -> float:
    if not is_real(u) or math.isnan(u):
        raise SpaceError(f"{where}: unit position must be a number in [0, 1], got {u!r}")
    return clip(float(u), 0.0, 1.0)


def check_factor(factor: Any, where: str) -> float:
    if not is_real(factor) or not math.isfinite(factor) or factor <= 0:
        raise SpaceError(f"{where}: perturbation factor must be a finite number > 0, got {factor!r}")
    return float(factor)
