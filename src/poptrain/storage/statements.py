"""Statements of the hot path, built once per storage.

A worker runs a few of these at every ready point. Building a SQLAlchemy
statement and its cache key costs more than running it on SQLite, so they
are built once, with bind parameters, and reused.
"""

from __future__ import annotations

from functools import cached_property

import sqlalchemy as sa
from sqlalchemy import bindparam as b

from poptrain.storage import schema

M, C, L, H, S = schema.members, schema.checkpoints, schema.leases, schema.history, schema.segments


class Statements:
    def __init__(self, now: sa.ColumnElement[float], postgres: bool) -> None:
        self.now = now
        self.pg = postgres

    @cached_property
    def claim_free(self) -> sa.Select:
        """The free member furthest behind; among equals, one the worker holds in memory."""
        preferred = sa.case((M.c.member_id.in_(b("p_prefer", expanding=True)), 0), else_=1)
        # Among members at one step, the order turns with the step: the member
        # that arrives first at a ready point finds the others behind it and
        # cannot copy them (weights never go back in time), so a fixed order
        # would keep the same member from ever exploiting.
        turn = (sa.cast(M.c.member_id, sa.BigInteger) * 40503 + sa.cast(M.c.step, sa.BigInteger) * 7919) % 65521
        q = (
            sa.select(M.c.member_id, M.c.step, M.c.lease_token, self.now.label("now"))
            .where(M.c.experiment_id == b("p_exp"), M.c.state == "active",
                   sa.or_(M.c.lease_token.is_(None), M.c.lease_expires < self.now))
            .order_by(M.c.step, preferred, turn, M.c.member_id)
            .limit(1)
        )
        # PostgreSQL: only the one row picked is locked, and a row another
        # worker is claiming right now is skipped, never waited for; rows
        # other workers hold are not touched at all.
        return q.with_for_update(of=M, skip_locked=True) if self.pg else q

    @cached_property
    def claim_held_here(self) -> sa.Select:
        """Live leases held by processes of one host (to find the dead ones)."""
        return (
            sa.select(M.c.member_id, M.c.step, M.c.lease_token, M.c.lease_owner, self.now.label("now"))
            .where(M.c.experiment_id == b("p_exp"), M.c.state == "active", M.c.lease_token.is_not(None),
                   M.c.lease_owner.like(b("p_host")))
            .order_by(M.c.step, M.c.member_id)
        )

    def _claim(self, takeover: bool) -> sa.Update:
        cond = M.c.lease_token == b("p_old") if takeover else M.c.lease_token.is_(None)
        return (
            sa.update(M)
            .where(M.c.experiment_id == b("p_exp"), M.c.member_id == b("p_member"), M.c.state == "active", cond)
            .values(lease_token=b("p_token"), lease_owner=b("p_owner"), lease_expires=b("p_expires"), updated_at=b("p_now"))
            .returning(*M.c)
        )

    @cached_property
    def claim_unleased(self) -> sa.Update:
        return self._claim(False)

    @cached_property
    def claim_takeover(self) -> sa.Update:
        return self._claim(True)

    @cached_property
    def lease_taken_over(self) -> sa.Update:
        return sa.update(L).where(L.c.token == b("p_old")).values(released_at=b("p_now"), outcome="taken_over")

    @cached_property
    def lease_insert(self) -> sa.Insert:
        return sa.insert(L)

    @cached_property
    def lease_closed(self) -> sa.Update:
        return (
            sa.update(L)
            .where(L.c.token == b("p_token"), L.c.released_at.is_(None))
            .values(released_at=self.now, outcome=b("p_outcome"))
        )

    def finish(self, state: str | None, gives_up: bool) -> sa.Update:
        return self._finish[(state, gives_up)]

    @cached_property
    def _finish(self) -> dict[tuple[str | None, bool], sa.Update]:
        out = {}
        for state in (None, "done", "waiting"):
            for gives_up in (False, True):
                values = dict(
                    step=b("p_step"), scores=b("p_scores", type_=sa.JSON), ckpt_key=b("p_key"), ckpt_sha=b("p_sha"),
                    ckpt_size=b("p_size"), updated_at=self.now,
                )
                if state is not None:
                    values["state"] = sa.literal(state)
                if gives_up:
                    values.update(lease_token=None, lease_owner=None, lease_expires=None)
                out[(state, gives_up)] = (
                    sa.update(M)
                    .where(M.c.experiment_id == b("p_exp"), M.c.member_id == b("p_member"),
                           M.c.lease_token == b("p_token"), M.c.state == "active")
                    .values(**values)
                    .returning(self.now.label("now"))
                )
        return out

    @cached_property
    def history_insert(self) -> sa.Insert:
        return sa.insert(H)

    @cached_property
    def observation_insert(self) -> sa.Insert:
        return sa.insert(schema.observations)

    @cached_property
    def checkpoint_insert(self) -> sa.Insert:
        return sa.insert(C)

    def forget(self, mode: str) -> sa.Delete:
        return self._forget[mode]

    @cached_property
    def _forget(self) -> dict[str, sa.Delete]:
        out = {}
        for mode in ("max", "min"):
            order = C.c.score.desc() if mode == "max" else C.c.score.asc()
            best = (
                sa.select(C.c.key).where(C.c.experiment_id == b("p_exp"), C.c.score.is_not(None))
                .order_by(order).limit(1).scalar_subquery()
            )
            referenced = sa.select(M.c.ckpt_key).where(M.c.experiment_id == b("p_exp"), M.c.ckpt_key.is_not(None))
            out[mode] = (
                sa.delete(C)
                .where(C.c.experiment_id == b("p_exp"), C.c.key.in_(b("p_keys", expanding=True)),
                       C.c.key.not_in(referenced), C.c.key != sa.func.coalesce(best, ""))
                .returning(C.c.key)
            )
        return out

    # -- an exploit -----------------------------------------------------------
    @cached_property
    def exploit_rows(self) -> sa.Select:
        """The member and its donor, locked in id order (two members copying each other queue, not deadlock)."""
        return (
            sa.select(M.c.member_id, M.c.segment_id, M.c.step, M.c.scores, M.c.ckpt_key, M.c.ckpt_sha, M.c.ckpt_size)
            .where(M.c.experiment_id == b("p_exp"), M.c.member_id.in_([b("p_member"), b("p_donor")]))
            .order_by(M.c.member_id)
            .with_for_update()
        )

    @cached_property
    def segment_end(self) -> sa.Update:
        return sa.update(S).where(S.c.id == b("p_segment")).values(end_step=b("p_end"))

    @cached_property
    def segment_insert(self) -> sa.Insert:
        return sa.insert(S).returning(S.c.id)

    @cached_property
    def member_exploited(self) -> sa.Update:
        return (
            sa.update(M)
            .where(M.c.experiment_id == b("p_exp"), M.c.member_id == b("p_member"))
            .values(config=b("p_config", type_=sa.JSON), step=b("p_step"), scores=b("p_scores", type_=sa.JSON),
                    ckpt_key=b("p_key"), ckpt_sha=b("p_sha"), ckpt_size=b("p_size"), segment_id=b("p_segment"),
                    updated_at=b("p_now"))
            .returning(*M.c)
        )

    @cached_property
    def decision_view(self) -> sa.Select:
        """What a decision reads of every member (no error texts, no lease columns).

        ``config`` and ``scores`` come as their JSON text, undecoded: the
        reader decodes only the rows that changed since its last snapshot.
        """
        cols = [M.c.member_id, M.c.state, M.c.step, sa.cast(M.c.config, sa.Text).label("config"), M.c.segment_id,
                sa.cast(M.c.scores, sa.Text).label("scores"), M.c.ckpt_key, M.c.ckpt_sha, M.c.ckpt_size, M.c.failures]
        return sa.select(*cols).where(M.c.experiment_id == b("p_exp")).order_by(M.c.member_id)

    @cached_property
    def members_of(self) -> sa.Select:
        return sa.select(M).where(M.c.experiment_id == b("p_exp")).order_by(M.c.member_id)
