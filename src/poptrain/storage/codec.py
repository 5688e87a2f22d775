"""JSON values that survive every backend: PostgreSQL's JSON rejects NaN and inf."""

from __future__ import annotations

import math
from typing import Any, Mapping

_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def enc_float(x: float | None) -> float | str | None:
    if x is None:
        return None
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return x


def dec_float(x: Any) -> float:
    if x is None:
        return math.nan
    if isinstance(x, str):
        return _SPECIAL.get(x, math.nan)
    return float(x)


def enc_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {k: enc_float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v for k, v in metrics.items()}


def dec_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {k: dec_float(v) if (isinstance(v, str) and v in _SPECIAL) else v for k, v in metrics.items()}


def enc_scores(scores: list[float] | tuple[float, ...]) -> list[Any]:
    return [enc_float(s) for s in scores]


def dec_scores(scores: list[Any] | None) -> tuple[float, ...]:
    return tuple(dec_float(s) for s in (scores or []))
