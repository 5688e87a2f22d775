"""Plain records the storage returns. No SQLAlchemy objects leak out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ExperimentRecord:
    id: int
    name: str
    spec: dict[str, Any]
    status: str
    created_at: float


@dataclass(frozen=True)
class CheckpointRecord:
    key: str
    sha256: str
    size: int


@dataclass(frozen=True)
class MemberRecord:
    member_id: int
    state: str
    step: int
    config: dict[str, Any]
    segment_id: int
    scores: tuple[float, ...]
    checkpoint: CheckpointRecord | None
    failures: int = 0
    error: str | None = None
    lease_owner: str | None = None


@dataclass(frozen=True)
class Lease:
    """A worker's exclusive right to train one member, until ``token`` is taken over."""

    experiment_id: int
    member: MemberRecord
    token: str
    worker: str

    @property
    def member_id(self) -> int:
        return self.member.member_id


@dataclass(frozen=True)
class IntervalReport:
    """What a worker commits at a ready point, in one transaction."""

    step: int
    rows: list[tuple[int, dict[str, float]]]
    checkpoint: CheckpointRecord
    scores: list[float]
    score: float | None
    done: bool
    observation: dict[str, Any] | None = None


@dataclass(frozen=True)
class ExploitOrder:
    donor: int
    config: dict[str, Any]


@dataclass
class Snapshot:
    members: list[MemberRecord]
    observations: list[dict[str, Any]] = field(default_factory=list)
