"""Reading the population back: snapshots for decisions, and everything results and reports show."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from poptrain.storage import codec, schema
from poptrain.storage.base import M, StorageBase, member_record
from poptrain.storage.records import MemberRecord, Snapshot


class Reads(StorageBase):
    def snapshot(self, experiment_id: int, *, observations: int = 0, full: bool = False) -> Snapshot:
        """Every member (and the latest ``observations``); ``full`` adds error texts and lease owners."""
        with self._read() as conn:
            rows = conn.execute(self._q.members_of if full else self._q.decision_view, {"p_exp": experiment_id}).all()
            members = [self._member(r, full) for r in rows] if full else self._decision_members(experiment_id, rows)
            obs: list[dict[str, Any]] = []
            if observations:
                O = schema.observations
                orows = conn.execute(
                    sa.select(O).where(O.c.experiment_id == experiment_id).order_by(O.c.id.desc()).limit(observations)
                ).all()
                obs = [
                    dict(member=r.member_id, step_start=r.step_start, step_end=r.step_end,
                         score_start=codec.dec_float(r.score_start), score_end=codec.dec_float(r.score_end), config=r.config)
                    for r in reversed(orows)
                ]
        return Snapshot(members, obs)

    def _decision_members(self, experiment_id: int, rows: Any) -> list[MemberRecord]:
        # A worker reads every member at every ready point, but between two of
        # its reads only the few members trained meanwhile have changed: a row
        # equal to the one read last time gives back the record built then, and
        # only changed rows have their JSON decoded (at 256 members this took the
        # snapshot from 7 ms to 1 ms). The records are shared between snapshots,
        # so their configs must not be changed in place (strategies copy them).
        known = self._decoded.setdefault(experiment_id, {})
        out = []
        for r in rows:
            t = tuple(r)
            hit = known.get(t[0])
            if hit is None or hit[0] != t:
                hit = known[t[0]] = (t, self._decode_decision_row(t))
            out.append(hit[1])
        return out

    @staticmethod
    def _decode_decision_row(t: tuple[Any, ...]) -> MemberRecord:
        member_id, state, step, config, segment_id, scores, *checkpoint_and_failures = t
        return member_record(member_id, state, step, json.loads(config), segment_id,
                             json.loads(scores) if scores is not None else None, *checkpoint_and_failures)

    def is_finished(self, experiment_id: int) -> bool:
        with self._read() as conn:
            n = conn.execute(
                sa.select(sa.func.count())
                .select_from(M)
                .where(M.c.experiment_id == experiment_id, M.c.state.in_(["active", "waiting"]))
            ).scalar_one()
        return n == 0

    def members(self, experiment_id: int) -> list[MemberRecord]:
        return self.snapshot(experiment_id, full=True).members

    def history(self, experiment_id: int) -> list[dict[str, Any]]:
        H = schema.history
        q = sa.select(H).where(H.c.experiment_id == experiment_id)
        with self._read() as conn:
            rows = conn.execute(q.order_by(H.c.member_id, H.c.segment_id, H.c.step)).all()
        return [
            dict(member=r.member_id, segment=r.segment_id, step=r.step, metrics=codec.dec_metrics(r.metrics))
            for r in rows
        ]

    def count_history(self, experiment_id: int) -> int:
        H = schema.history
        with self._read() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(H).where(H.c.experiment_id == experiment_id)).scalar_one()

    def segments(self, experiment_id: int) -> list[dict[str, Any]]:
        S = schema.segments
        with self._read() as conn:
            rows = conn.execute(sa.select(S).where(S.c.experiment_id == experiment_id).order_by(S.c.id)).all()
            current = dict(conn.execute(
                sa.select(M.c.segment_id, M.c.step).where(M.c.experiment_id == experiment_id)
            ).all())
        # A segment still being trained ends where its member is now.
        return [
            dict(segment=r.id, member=r.member_id, parent=r.parent_id, prev=r.prev_id, start_step=r.start_step,
                 end_step=r.end_step if r.end_step is not None else current.get(r.id, r.start_step), config=r.config, donor=r.donor, donor_step=r.donor_step,
                 member_step=r.member_step, old_config=r.old_config)
            for r in rows
        ]

    def leases(self, experiment_id: int) -> list[dict[str, Any]]:
        L = schema.leases
        with self._read() as conn:
            rows = conn.execute(sa.select(L).where(L.c.experiment_id == experiment_id).order_by(L.c.id)).all()
        return [dict(r._mapping) for r in rows]

    def checkpoint_records(self, experiment_id: int) -> list[dict[str, Any]]:
        C = schema.checkpoints
        with self._read() as conn:
            rows = conn.execute(sa.select(C).where(C.c.experiment_id == experiment_id).order_by(C.c.created_at)).all()
        return [dict(r._mapping) for r in rows]
