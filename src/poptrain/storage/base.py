"""What every part of :class:`~poptrain.storage.Storage` shares: the engine, transactions, row mapping."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Iterator, Mapping

import sqlalchemy as sa

from poptrain.storage import codec, schema
from poptrain.storage.engine import DEFAULT_URL, READ_ONLY, create_engine, mask_url, now_expr
from poptrain.storage.records import CheckpointRecord, MemberRecord
from poptrain.storage.statements import Statements
from poptrain.storage.writelock import WriteLock

M = schema.members


class StorageBase:
    """The connection to one database; the parts of Storage build on it."""

    # Test each pooled PostgreSQL connection before use (one round trip per
    # checkout), so that a call after a database restart does not fail once.
    _pre_ping = True

    def __init__(self, url: str = DEFAULT_URL) -> None:
        self.url = url
        self.engine = create_engine(url, pre_ping=self._pre_ping)
        self._now = now_expr(self.engine)
        self._pg = self.engine.dialect.name == "postgresql"
        self._q = Statements(self._now, self._pg)
        db = self.engine.url.database if self.engine.dialect.name == "sqlite" else None
        self._lock = WriteLock(os.path.abspath(db) + ".lock") if db and db != ":memory:" and not db.startswith("file:") else None
        # experiment id -> member id -> (the decision row last read, its record); see Reads.snapshot.
        self._decoded: dict[int, dict[int, tuple[tuple[Any, ...], MemberRecord]]] = {}

    def __repr__(self) -> str:
        return f"Storage({mask_url(self.url)!r})"

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["url"])  # type: ignore[misc]

    def close(self) -> None:
        self.engine.dispose()

    # -- helpers ---------------------------------------------------------
    @contextmanager
    def _tx(self) -> Iterator[sa.Connection]:
        if self._lock is None:
            with self.engine.begin() as conn:
                yield conn
            return
        with self._lock.hold(), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with self.engine.connect() as conn:
            if self._pg:
                # Under PostgreSQL's read committed, each statement sees its own
                # snapshot, in a transaction or not; outside one, a read is one
                # round trip instead of three (BEGIN, the query, ROLLBACK).
                conn.execution_options(isolation_level="AUTOCOMMIT")
                yield conn
                return
            conn.info[READ_ONLY] = True  # for SQLite's BEGIN (see engine.py)
            try:
                yield conn
            finally:
                # A connection lost mid-read must not hide the error that said so.
                if not conn.invalidated:
                    conn.info.pop(READ_ONLY, None)

    def now(self) -> float:
        with self._read() as conn:
            return float(conn.execute(sa.select(self._now)).scalar_one())

    @staticmethod
    def _member(row: Any, full: bool = True) -> MemberRecord:
        return member_record(row.member_id, row.state, row.step, row.config, row.segment_id, row.scores,
                             row.ckpt_key, row.ckpt_sha, row.ckpt_size, row.failures,
                             error=row.error if full else None, lease_owner=row.lease_owner if full else None)

    def _exploit(self, conn: sa.Connection, experiment_id: int, me: Any, donor: Any, config: Mapping[str, Any],
                 *, now: float, old_config: Mapping[str, Any]) -> Any:
        """Point ``me`` at ``donor``'s checkpoint, step and scores with ``config``, in a new segment; returns the row.

        The caller read ``donor`` FOR UPDATE: on PostgreSQL (read committed)
        a donor's commit that replaces its checkpoint and garbage-collects the
        old one either finishes first (we copy the new key) or waits for us
        (its GC then sees our reference), so the key copied here is never
        deleted under us. SQLite serialises writers anyway.
        """
        q = self._q
        conn.execute(q.segment_end, {"p_segment": me.segment_id, "p_end": me.step})
        seg = conn.execute(
            q.segment_insert,
            dict(experiment_id=experiment_id, member_id=me.member_id, parent_id=donor.segment_id, prev_id=me.segment_id,
                 start_step=donor.step, config=dict(config), donor=donor.member_id, donor_step=donor.step,
                 member_step=me.step, old_config=dict(old_config), created_at=now),
        ).scalar_one()
        return conn.execute(
            q.member_exploited,
            dict(p_exp=experiment_id, p_member=me.member_id, p_config=dict(config), p_step=donor.step,
                 p_scores=donor.scores, p_key=donor.ckpt_key, p_sha=donor.ckpt_sha, p_size=donor.ckpt_size,
                 p_segment=seg, p_now=now),
        ).one()


def _finite_or_none(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if x == x and abs(x) != float("inf") else None


def member_record(member_id: int, state: str, step: int, config: Any, segment_id: int, scores: Any,
                  ckpt_key: str | None, ckpt_sha: str | None, ckpt_size: int | None, failures: int | None, *,
                  error: str | None = None, lease_owner: str | None = None) -> MemberRecord:
    """A member's record from its columns (``config`` decoded; ``scores`` as stored)."""
    return MemberRecord(
        member_id=member_id, state=state, step=step, config=config, segment_id=segment_id,
        scores=codec.dec_scores(scores), checkpoint=CheckpointRecord(ckpt_key, ckpt_sha, ckpt_size or 0) if ckpt_key else None,
        failures=failures or 0, error=error, lease_owner=lease_owner,
    )
