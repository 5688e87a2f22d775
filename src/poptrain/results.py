"""Results as data, read from storage: best member, schedule, lineage, history."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from poptrain.errors import StorageError
from poptrain.storage import DEFAULT_URL, Storage, mask_url, open_storage


@dataclass
class Result:
    """Everything stored about one experiment, as plain data.

    Attributes:
        experiment: the stored spec (name, space, strategy, metric, mode, ...).
        members: one dict per member: member, step, score, config, state, segment, failures, error.
        history: one dict per trained step: member, segment, step, metrics.
        segments: one dict per segment: segment, member, parent, start_step, end_step, config, donor, donor_step.
        lineage: one dict per exploit: member, step, donor, donor_step, old_config, new_config.
        best: the best member with its schedule (see :func:`schedule_of`).
    """

    experiment: dict[str, Any]
    status: str
    members: list[dict[str, Any]]
    history: list[dict[str, Any]]
    segments: list[dict[str, Any]]
    lineage: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.experiment["name"]

    def schedule(self, member: int) -> list[dict[str, Any]]:
        m = next(x for x in self.members if x["member"] == member)
        return schedule_of(self.segments, m["segment"], m["step"])

    def _repr_html_(self) -> str:
        try:
            from poptrain.reporting import summary_html
        except ImportError:
            return f"<pre>{self!r}</pre>"
        return summary_html(self)

    def __repr__(self) -> str:
        b = self.best or {}
        return (
            f"Result(name={self.name!r}, status={self.status!r}, members={len(self.members)}, "
            f"exploits={len(self.lineage)}, best_member={b.get('member')}, best_score={b.get('score')})"
        )


def schedule_of(segments: list[dict[str, Any]], segment_id: int, end_step: int) -> list[dict[str, Any]]:
    """The configs the weights of ``segment_id`` trained with, oldest first.

    Follows parent links: after an exploit, the weights' earlier history is
    the donor's segment up to the step the copy was made.
    """
    by_id = {s["segment"]: s for s in segments}
    chain = []
    seg = by_id.get(segment_id)
    while seg is not None:
        chain.append(seg)
        seg = by_id.get(seg["parent"]) if seg["parent"] is not None else None
    chain.reverse()
    # A segment that ended where it started trained nothing (its weights were
    # copied on at once): it is lineage, not schedule.
    chain = [s for i, s in enumerate(chain) if i + 1 == len(chain) or chain[i + 1]["start_step"] > s["start_step"]]
    out = []
    for i, s in enumerate(chain):
        stop = chain[i + 1]["start_step"] if i + 1 < len(chain) else end_step
        out.append(
            dict(start_step=s["start_step"], end_step=stop, config=s["config"], member=s["member"], donor=s["donor"])
        )
    return out


def _score(scores: tuple[float, ...]) -> float:
    return scores[-1] if scores else math.nan


def load_result(storage: str | Storage = DEFAULT_URL, name: str | None = None) -> Result:
    """Read an experiment's result; ``name`` may be omitted when the storage holds one experiment."""
    st = storage if isinstance(storage, Storage) else open_storage(storage)
    exp = resolve_experiment(st, name)
    members = [
        dict(member=m.member_id, step=m.step, score=_score(m.scores), config=m.config, state=m.state,
             segment=m.segment_id, failures=m.failures, error=m.error)
        for m in st.members(exp.id)
    ]
    segments = st.segments(exp.id)
    lineage = [
        dict(member=s["member"], step=s["member_step"], donor=s["donor"], donor_step=s["donor_step"],
             old_config=s["old_config"], new_config=s["config"], segment=s["segment"], parent_segment=s["parent"])
        for s in segments
        if s["donor"] is not None
    ]
    result = Result(
        experiment=exp.spec, status=exp.status, members=members, history=st.history(exp.id),
        segments=segments, lineage=lineage,
    )
    result.best = best_of(result)
    return result


def best_of(result: Result) -> dict[str, Any] | None:
    sign = 1.0 if result.experiment.get("mode", "max") == "max" else -1.0
    usable = [m for m in result.members if isinstance(m["score"], float) and math.isfinite(m["score"])]
    if not usable:
        return None
    top = max(usable, key=lambda m: (sign * m["score"], -m["member"]))
    return dict(
        member=top["member"], score=top["score"], step=top["step"], config=top["config"],
        schedule=schedule_of(result.segments, top["segment"], top["step"]),
    )


def resolve_experiment(st: Storage, name: str | None):  # noqa: ANN201
    """The named experiment, or the only one; StorageError saying which names exist otherwise."""
    exps = st.list_experiments()
    if name is None:
        if len(exps) == 1:
            return exps[0]
        if not exps:
            raise StorageError(f"storage {mask_url(st.url)} holds no experiment yet")
        names = ", ".join(e.name for e in exps)
        raise StorageError(f"storage {mask_url(st.url)} holds several experiments ({names}); pick one with --name")
    exp = st.get_experiment(name)
    if exp is None:
        names = ", ".join(e.name for e in exps) or "none"
        raise StorageError(f"no experiment named {name!r} in {mask_url(st.url)} (experiments there: {names})")
    return exp
