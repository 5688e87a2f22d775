"""Exploit rules: whether a ready member should copy another one, and which.

A selection only names a donor. Every rule here returns a member that may be a
donor (usable score, checkpoint, not failed) and is not the member itself, or
None to keep training. Failed members take no part in the ranking.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from poptrain.algorithms._stats import welch_greater
from poptrain.algorithms.scoring import Scorer, better, is_donor, ranked, usable
from poptrain.algorithms.serialize import Component, register_selection
from poptrain.algorithms.types import MemberView, PopulationView
from poptrain.errors import ConfigError


class Selection(Component, abc.ABC):
    """Chooses a donor for a ready member, or None to continue."""

    family: ClassVar[str] = "selection"

    @abc.abstractmethod
    def select(
        self, member_id: int, population: PopulationView, scorer: Scorer, rng: np.random.Generator
    ) -> int | None: ...


def quantile_size(n: int, fraction: float) -> int:
    """How many members form the top (and the bottom) ``fraction`` of ``n``.

    Rounded half up, at least one member once there are two, and never more
    than half so that the top and the bottom never overlap.

    Example:
        >>> [quantile_size(n, 0.25) for n in (1, 2, 4, 6, 10)]
        [0, 1, 1, 2, 3]
    """
    if n < 2:
        return 0
    return min(max(1, math.floor(fraction * n + 0.5)), n // 2)


def _live_ranking(population: PopulationView, scorer: Scorer) -> list[MemberView]:
    return [m for m in ranked(population, scorer) if not m.failed]


def _pick(candidates: list[MemberView], rng: np.random.Generator) -> MemberView | None:
    return candidates[int(rng.integers(len(candidates)))] if candidates else None


def _top_donors(order: list[MemberView], cut: int, member_id: int, scorer: Scorer) -> list[MemberView]:
    return [m for m in order[:cut] if m.id != member_id and is_donor(m, scorer)]


def _check_fraction(owner: str, fraction: Any) -> None:
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 0.5:
        raise ConfigError(
            f"The 'fraction' parameter of {owner} must be a number in (0, 0.5]. Got {fraction!r} instead."
        )


@dataclass(frozen=True)
class Truncation(Selection):
    """Bottom ``fraction`` copies a uniformly chosen member of the top ``fraction`` (paper §4.1.1).

    A member with no usable score always counts as bottom.

    Example:
        >>> from poptrain.algorithms import Latest, MemberView, PopulationView
        >>> pop = PopulationView([MemberView(i, 10, {}, (float(i),)) for i in range(4)])
        >>> Truncation(0.25).select(0, pop, Latest(), np.random.default_rng(0))
        3
    """

    fraction: float = 0.25
    kind: ClassVar[str] = "truncation"

    def __post_init__(self) -> None:
        _check_fraction("Truncation", self.fraction)

    def select(
        self, member_id: int, population: PopulationView, scorer: Scorer, rng: np.random.Generator
    ) -> int | None:
        member = population.member(member_id)
        order = _live_ranking(population, scorer)
        cut = quantile_size(len(order), self.fraction)
        if cut == 0:
            return None
        in_bottom = member_id in {m.id for m in order[-cut:]} or not usable(scorer(member))
        if not in_bottom:
            return None
        donor = _pick(_top_donors(order, cut, member_id, scorer), rng)
        return None if donor is None else donor.id


@dataclass(frozen=True)
class Tournament(Selection):
    """Compare with one uniformly chosen other member; copy it if it is strictly better (paper §4.3).

    Example:
        >>> from poptrain.algorithms import Latest, MemberView, PopulationView
        >>> pop = PopulationView([MemberView(0, 10, {}, (0.1,)), MemberView(1, 10, {}, (0.9,))])
        >>> Tournament().select(0, pop, Latest(), np.random.default_rng(0))
        1
    """

    kind: ClassVar[str] = "tournament"

    def select(
        self, member_id: int, population: PopulationView, scorer: Scorer, rng: np.random.Generator
    ) -> int | None:
        member = population.member(member_id)
        others = sorted((m for m in population.members if m.id != member_id and not m.failed), key=lambda m: m.id)
        opponent = _pick(others, rng)
        if opponent is None or not is_donor(opponent, scorer):
            return None
        return opponent.id if better(scorer(opponent), scorer(member), population.mode) else None


@dataclass(frozen=True)
class TTest(Selection):
    """Copy a member of the top ``fraction`` if Welch's t-test says it is better (paper §4.1.1).

    The test compares the last ``k`` raw scores of both members, one-sided,
    and copies when ``p < alpha``. It needs two finite scores on each side,
    except that a member whose own recent scores are unusable (NaN, inf, or
    none) is replaced outright.

    Example:
        >>> from poptrain.algorithms import Latest, MemberView, PopulationView
        >>> pop = PopulationView([MemberView(0, 10, {}, (0.1, 0.2, 0.1)), MemberView(1, 10, {}, (0.9, 0.8, 0.9))])
        >>> TTest(k=3).select(0, pop, Latest(), np.random.default_rng(0))
        1
    """

    k: int = 10
    alpha: float = 0.05
    fraction: float = 0.25
    kind: ClassVar[str] = "ttest"

    def __post_init__(self) -> None:
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 2:
            raise ConfigError(f"The 'k' parameter of TTest must be an int >= 2. Got {self.k!r} instead.")
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float)) or not 0 < self.alpha < 1:
            raise ConfigError(f"The 'alpha' parameter of TTest must be a number in (0, 1). Got {self.alpha!r} instead.")
        _check_fraction("TTest", self.fraction)

    def select(
        self, member_id: int, population: PopulationView, scorer: Scorer, rng: np.random.Generator
    ) -> int | None:
        member = population.member(member_id)
        order = _live_ranking(population, scorer)
        candidate = _pick(_top_donors(order, quantile_size(len(order), self.fraction), member_id, scorer), rng)
        if candidate is None:
            return None
        theirs = list(candidate.scores[-self.k :])
        if len(theirs) < 2 or not all(usable(s) for s in theirs):
            return None
        mine = list(member.scores[-self.k :])
        if not usable(scorer(member)) or not all(usable(s) for s in mine):
            return candidate.id
        if len(mine) < 2:
            return None
        theirs_f, mine_f = [float(s) for s in theirs], [float(s) for s in mine]
        if population.mode == "max":
            p = welch_greater(theirs_f, mine_f)
        else:
            p = welch_greater(mine_f, theirs_f)
        return candidate.id if p < self.alpha else None


register_selection("truncation", Truncation)
register_selection("tournament", Tournament)
register_selection("ttest", TTest)
