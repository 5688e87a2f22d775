"""Value objects the algorithms read and return. No I/O, no storage imports."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Sequence

Mode = Literal["max", "min"]


@dataclass(frozen=True)
class MemberView:
    """What an algorithm may know about one member at a decision.

    Attributes:
        id: stable member id ``0..N-1``.
        step: steps trained by the weights the member holds now.
        config: the member's current config (nested dict, as the space shapes it).
        scores: the member's most recent metric values, oldest first (the
            latest last). They belong to the weights: after an exploit they are
            the donor's. Empty when nothing was reported yet.
        has_checkpoint: whether a checkpoint of the current weights exists;
            a member without one is never a donor.
        failed: the member has been given up on; it is never a donor.
    """

    id: int
    step: int
    config: Mapping[str, Any]
    scores: tuple[float, ...] = ()
    has_checkpoint: bool = True
    failed: bool = False

    @property
    def latest(self) -> float:
        return self.scores[-1] if self.scores else math.nan


@dataclass(frozen=True)
class Observation:
    """One finished interval of one member, for model-based explore (PB2).

    ``score_start`` is the score the weights had when the interval began,
    ``score_end`` the score at its end, ``config`` the config trained with.
    """

    member: int
    step_start: int
    step_end: int
    score_start: float
    score_end: float
    config: Mapping[str, Any]


@dataclass(frozen=True)
class PopulationView:
    """A snapshot of the population as an algorithm sees it."""

    members: Sequence[MemberView]
    mode: Mode = "max"
    observations: Sequence[Observation] = field(default_factory=tuple)

    def member(self, member_id: int) -> MemberView:
        for m in self.members:
            if m.id == member_id:
                return m
        raise KeyError(member_id)


@dataclass(frozen=True)
class Continue:
    """Keep training with the same weights and config."""

    reason: str = ""


@dataclass(frozen=True)
class Exploit:
    """Copy ``donor``'s latest checkpoint, then train with ``config``."""

    donor: int
    config: Mapping[str, Any]
    reason: str = ""


Decision = Continue | Exploit
