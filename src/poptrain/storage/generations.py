"""Synchronous generations: the barrier, and a whole generation's records and exploits at once."""

from __future__ import annotations

from typing import Any, Mapping

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from poptrain.storage import codec, schema
from poptrain.storage.base import M, StorageBase, _finite_or_none
from poptrain.storage.records import CheckpointRecord, ExploitOrder


class Generations(StorageBase):
    def barrier_step(self, experiment_id: int) -> int | None:
        """The step of a complete, undecided barrier: no active member and some waiting."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(M.c.state, M.c.step).where(M.c.experiment_id == experiment_id, M.c.state.in_(["active", "waiting"]))
            ).all()
        if not rows or any(r.state == "active" for r in rows):
            return None
        return min(r.step for r in rows)

    def apply_generation(
        self, experiment_id: int, step: int, orders: Mapping[int, ExploitOrder], *, decided_by: str
    ) -> bool:
        """Apply a whole generation's decisions at once; exactly one caller succeeds."""
        try:
            with self._tx() as conn:
                rows = {
                    r.member_id: r
                    for r in conn.execute(sa.select(M).where(M.c.experiment_id == experiment_id).with_for_update()).all()
                }
                now = float(conn.execute(sa.select(self._now)).scalar_one())
                live = [r for r in rows.values() if r.state in ("active", "waiting")]
                if any(r.state != "waiting" for r in live):
                    conn.rollback()
                    return False
                conn.execute(
                    sa.insert(schema.generations).values(
                        experiment_id=experiment_id, step=step, decided_at=self._now, decided_by=decided_by,
                        decisions={str(k): {"donor": v.donor, "config": dict(v.config)} for k, v in orders.items()},
                    )
                )
                # Donors are read from the snapshot taken before any exploit of
                # this generation, so the order of application cannot matter.
                for member_id in sorted(orders):
                    order = orders[member_id]
                    me, donor = rows.get(member_id), rows.get(order.donor)
                    if me is None or donor is None or donor.ckpt_key is None or member_id == order.donor:
                        continue
                    if me.state != "waiting":
                        continue
                    self._exploit(conn, experiment_id, me, donor, order.config, now=now, old_config=me.config)
                conn.execute(
                    sa.update(M).where(M.c.experiment_id == experiment_id, M.c.state == "waiting").values(state="active")
                )
            return True
        except IntegrityError:
            return False

    def commit_generation(
        self,
        experiment_id: int,
        step: int,
        rows: Mapping[int, list[tuple[int, dict[str, float]]]],
        scores: Mapping[int, list[float]],
        checkpoint: CheckpointRecord,
        *,
        done: bool,
        mode: str = "max",
    ) -> None:
        """Record one interval of every member at once (the vectorized engine's writer).

        The engine owns the whole population in one process, so there are no
        leases; all members share one stacked checkpoint. Members end
        ``waiting`` at the barrier (``apply_generation`` then decides) or ``done``.
        """
        with self._tx() as conn:
            now = float(conn.execute(sa.select(self._now)).scalar_one())
            members = {r.member_id: r for r in conn.execute(self._q.members_of, {"p_exp": experiment_id}).all()}
            history_rows = []
            for member_id, member_rows in rows.items():
                seg = members[member_id].segment_id
                history_rows += [
                    dict(experiment_id=experiment_id, member_id=member_id, segment_id=seg, step=st,
                         metrics=codec.enc_metrics(m), created_at=now)
                    for st, m in member_rows
                ]
                conn.execute(
                    sa.update(M)
                    .where(M.c.experiment_id == experiment_id, M.c.member_id == member_id, M.c.state == "active")
                    .values(step=step, scores=codec.enc_scores(scores[member_id]), ckpt_key=checkpoint.key,
                            ckpt_sha=checkpoint.sha256, ckpt_size=checkpoint.size, updated_at=now,
                            state="done" if done else "waiting")
                )
            if history_rows:
                conn.execute(self._q.history_insert, history_rows)
            finite = [v[-1] for v in scores.values() if v and _finite_or_none(v[-1]) is not None]
            best = (max(finite) if mode == "max" else min(finite)) if finite else None
            conn.execute(
                self._q.checkpoint_insert,
                dict(experiment_id=experiment_id, key=checkpoint.key, sha256=checkpoint.sha256, size=checkpoint.size,
                     member_id=-1, segment_id=-1, step=step, score=best, created_at=now),
            )

    def generation(self, experiment_id: int, step: int) -> dict[str, Any] | None:
        G = schema.generations
        with self._read() as conn:
            row = conn.execute(sa.select(G.c.decisions).where(G.c.experiment_id == experiment_id, G.c.step == step)).first()
        return None if row is None else row[0]
