"""Typed dimensions of a search space.

Every method that produces a value (``sample``, ``perturb``, ``from_unit``)
returns a value inside the domain, with the declared Python type, whatever it
is given: that is the invariant the rest of poptrain builds on.
"""

from __future__ import annotations

from typing import Any, Mapping

from poptrain.errors import SpaceError
from poptrain.space.base import Dimension
from poptrain.space.categorical import Choice, Ordered
from poptrain.space.numeric import Float, Int

__all__ = ["Choice", "Dimension", "Float", "Int", "Ordered", "dimension_from_json"]

_KINDS: dict[str, type[Dimension]] = {"float": Float, "int": Int, "choice": Choice, "ordered": Ordered}


def dimension_from_json(data: Mapping[str, Any]) -> Dimension:
    """The dimension described by ``data`` (as written by ``Dimension.to_json``).

    Example:
        >>> dimension_from_json({"type": "int", "low": 1, "high": 8, "log": False})
        Int(1, 8)
    """
    if not isinstance(data, Mapping):
        raise SpaceError(f"a dimension must be a JSON object, got {data!r}")
    kind = data.get("type")
    if kind not in _KINDS:
        raise SpaceError(f"unknown dimension type {kind!r} in {dict(data)!r}; known: {sorted(_KINDS)}")
    fields = {"values"} if kind in ("choice", "ordered") else {"low", "high", "log"}
    required = fields - {"log"}
    missing, extra = required - set(data), set(data) - fields - {"type"}
    if missing or extra:
        raise SpaceError(
            f"dimension {dict(data)!r}: "
            + (f"missing {sorted(missing)}" if missing else f"unexpected {sorted(extra)}")
        )
    if kind in ("choice", "ordered"):
        return _KINDS[kind](data["values"])
    return _KINDS[kind](data["low"], data["high"], log=data.get("log", False))
