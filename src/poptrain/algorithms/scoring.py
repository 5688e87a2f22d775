"""How a member's reported metrics become one comparable score, and who ranks where."""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from poptrain.algorithms.serialize import Component, register_scorer
from poptrain.algorithms.types import MemberView, PopulationView
from poptrain.errors import ConfigError


def usable(x: Any) -> bool:
    """Whether ``x`` is a finite number, i.e. a score that may be compared.

    Example:
        >>> usable(0.3), usable(float("nan")), usable(float("-inf")), usable(None)
        (True, False, False, False)
    """
    if isinstance(x, bool):
        return False
    try:
        return math.isfinite(x)
    except TypeError:
        return False


def _as_float(x: Any) -> float:
    try:
        return float(x) if not isinstance(x, bool) else math.nan
    except (TypeError, ValueError):
        return math.nan


class Scorer(Component, abc.ABC):
    """Turns a member's recent scores into one number; NaN when it has no usable score."""

    family: ClassVar[str] = "scorer"

    @abc.abstractmethod
    def __call__(self, view: MemberView) -> float: ...


@dataclass(frozen=True)
class Latest(Scorer):
    """The most recent score.

    Example:
        >>> Latest()(MemberView(id=0, step=5, config={}, scores=(0.1, 0.4)))
        0.4
    """

    kind: ClassVar[str] = "latest"

    def __call__(self, view: MemberView) -> float:
        return _as_float(view.scores[-1]) if view.scores else math.nan


@dataclass(frozen=True)
class MeanLast(Scorer):
    """The mean of the last ``k`` scores (fewer when fewer exist).

    Smoothing matters because a noisy metric's lucky member makes a bad donor.

    Example:
        >>> MeanLast(2)(MemberView(id=0, step=5, config={}, scores=(9.0, 1.0, 3.0)))
        2.0
    """

    k: int
    kind: ClassVar[str] = "mean_last"

    def __post_init__(self) -> None:
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise ConfigError(f"The 'k' parameter of MeanLast must be an int >= 1. Got {self.k!r} instead.")

    def __call__(self, view: MemberView) -> float:
        recent = [_as_float(s) for s in view.scores[-self.k :]]
        if not recent:
            return math.nan
        return math.fsum(recent) / len(recent)


register_scorer("latest", Latest)
register_scorer("mean_last", MeanLast)


def _check_mode(population: PopulationView) -> None:
    if population.mode not in ("max", "min"):
        raise ConfigError(f"The mode of a population must be 'max' or 'min'. Got {population.mode!r} instead.")


def better(a: float, b: float, mode: str) -> bool:
    """Whether score ``a`` is strictly better than ``b``; an unusable score is worse than any usable one."""
    if not usable(a):
        return False
    if not usable(b):
        return True
    return a > b if mode == "max" else a < b


def ranked(population: PopulationView, scorer: Scorer) -> list[MemberView]:
    """The members, best first by ``population.mode``.

    Members without a usable score (NaN, ±inf, none reported) rank last; ties
    are broken by member id so the order never depends on the input order.

    Example:
        >>> pop = PopulationView([MemberView(0, 5, {}, (1.0,)), MemberView(1, 5, {}, (float("nan"),)),
        ...                       MemberView(2, 5, {}, (2.0,))], mode="min")
        >>> [m.id for m in ranked(pop, Latest())]
        [0, 2, 1]
    """
    _check_mode(population)
    sign = -1.0 if population.mode == "max" else 1.0

    def key(m: MemberView) -> tuple[int, float, int]:
        s = scorer(m)
        return (0, sign * s, m.id) if usable(s) else (1, 0.0, m.id)

    return sorted(population.members, key=key)


def is_donor(view: MemberView, scorer: Scorer) -> bool:
    """Whether ``view`` may be copied: usable score, a checkpoint to copy, not failed."""
    return view.has_checkpoint and not view.failed and usable(scorer(view))


def donors(population: PopulationView, scorer: Scorer) -> list[MemberView]:
    """The members that may be donors, best first."""
    return [m for m in ranked(population, scorer) if is_donor(m, scorer)]
