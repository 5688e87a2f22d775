"""The population's one shared state: every change is a compare-and-set in a transaction.

A worker's writes for a member carry its lease token; a write whose token is
no longer the member's (the lease expired and another worker took over) is
refused as a whole, so a dead or slow worker can never add a second record
for a step or overwrite the member it lost.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError

from poptrain.errors import StorageError
from poptrain.storage import codec, schema
from poptrain.storage.base import M, _finite_or_none
from poptrain.storage.engine import DEFAULT_URL, mask_url
from poptrain.storage.generations import Generations
from poptrain.storage.reads import Reads
from poptrain.storage.records import (
    ExperimentRecord,
    ExploitOrder,
    IntervalReport,
    Lease,
    MemberRecord,
)



@dataclass(frozen=True)
class FinishResult:
    """What :meth:`Storage.finish_interval` did."""

    ok: bool
    exploited: MemberRecord | None = None
    garbage: list[str] = field(default_factory=list)
    barrier_step: int | None = None
    next_lease: Lease | None = None

_HOST = socket.gethostname()


def worker_name() -> str:
    """``host:pid:random``: unique, and tells a local dead worker from a live one."""
    return f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _local_and_dead(owner: str | None) -> bool:
    # A lease held by a process of this host that no longer exists can be taken
    # at once instead of waiting for it to expire (a restarted driver resumes
    # without delay). Other hosts' leases always wait for expiry.
    if not owner:
        return False
    parts = owner.split(":")
    if len(parts) < 3 or parts[0] != _HOST:
        return False
    try:
        pid = int(parts[1])
    except ValueError:
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False


class Storage(Reads, Generations):
    """Experiments, members, lineage, history, checkpoint records and leases.

    Args:
        url: a SQLAlchemy URL; ``sqlite:///poptrain.db`` (one machine) or
            ``postgresql://user:pass@host/db`` (many machines).

    Example:
        >>> s = Storage("sqlite://")
        >>> s.list_experiments()
        []
    """

    # -- experiments -----------------------------------------------------
    def get_experiment(self, name: str) -> ExperimentRecord | None:
        with self._read() as conn:
            row = conn.execute(sa.select(schema.experiments).where(schema.experiments.c.name == name)).first()
        return None if row is None else ExperimentRecord(row.id, row.name, row.spec, row.status, row.created_at)

    def list_experiments(self) -> list[ExperimentRecord]:
        with self._read() as conn:
            rows = conn.execute(sa.select(schema.experiments).order_by(schema.experiments.c.id)).all()
        return [ExperimentRecord(r.id, r.name, r.spec, r.status, r.created_at) for r in rows]

    def create_experiment(self, name: str, spec: Mapping[str, Any], configs: Sequence[Mapping[str, Any]]) -> ExperimentRecord:
        """Create the experiment with its members and their first segments, or return the existing one."""
        try:
            with self._tx() as conn:
                now = conn.execute(sa.select(self._now)).scalar_one()
                exp_id = conn.execute(
                    sa.insert(schema.experiments).values(name=name, spec=dict(spec), status="running", created_at=now)
                ).inserted_primary_key[0]
                for i, config in enumerate(configs):
                    seg = conn.execute(
                        sa.insert(schema.segments).values(
                            experiment_id=exp_id, member_id=i, start_step=0, config=dict(config), created_at=now
                        )
                    ).inserted_primary_key[0]
                    conn.execute(
                        sa.insert(M).values(
                            experiment_id=exp_id, member_id=i, state="active", step=0, config=dict(config),
                            segment_id=seg, scores=[], failures=0, updated_at=now,
                        )
                    )
        except IntegrityError:
            pass
        record = self.get_experiment(name)
        if record is None:  # pragma: no cover - insert failed for another reason
            raise StorageError(f"experiment {name!r} could not be created in {mask_url(self.url)}")
        return record

    def set_experiment_status(self, experiment_id: int, status: str) -> None:
        with self._tx() as conn:
            conn.execute(
                sa.update(schema.experiments)
                .where(schema.experiments.c.id == experiment_id)
                .values(status=status, finished_at=self._now if status == "done" else None)
            )

    def reopen_failed(self, experiment_id: int) -> int:
        """Give failed members another chance (on an explicit resume); returns how many."""
        with self._tx() as conn:
            res = conn.execute(
                sa.update(M)
                .where(M.c.experiment_id == experiment_id, M.c.state == "failed")
                .values(state="active", failures=0, lease_token=None, lease_owner=None, lease_expires=None)
            )
            return res.rowcount or 0

    # -- claiming --------------------------------------------------------
    def claim(self, experiment_id: int, worker: str, *, lease_s: float, prefer: Iterable[int] = ()) -> Lease | None:
        """Lease the unfinished, unleased member that is furthest behind, or None.

        Among members at the same step, ``prefer`` (members whose state the
        worker still holds in memory) wins, which saves a checkpoint read. A
        member whose lease expired counts as unleased.
        """
        with self._tx() as conn:
            return self._claim_in(conn, experiment_id, worker, lease_s, prefer)

    def _claim_in(self, conn: sa.Connection, experiment_id: int, worker: str, lease_s: float,
                  prefer: Iterable[int]) -> Lease | None:
        q = self._q
        pick = conn.execute(q.claim_free, {"p_exp": experiment_id, "p_prefer": list(prefer)}).first()
        if pick is None:
            # Nothing free: a lease held by a dead process of this host need
            # not wait for its expiry (a restarted driver resumes at once).
            held = conn.execute(q.claim_held_here, {"p_exp": experiment_id, "p_host": _HOST + ":%"}).all()
            pick = next((r for r in held if _local_and_dead(r.lease_owner)), None)
            if pick is None:
                return None
        now = float(pick.now)
        token = uuid.uuid4().hex
        params = dict(p_exp=experiment_id, p_member=pick.member_id, p_token=token, p_owner=worker,
                      p_expires=now + lease_s, p_now=now, p_old=pick.lease_token)
        # Compare-and-set on the token seen: a lease renewed or taken meanwhile wins.
        stmt = q.claim_unleased if pick.lease_token is None else q.claim_takeover
        row = conn.execute(stmt, params).first()
        if row is None:
            return None
        if pick.lease_token is not None:
            conn.execute(q.lease_taken_over, {"p_old": pick.lease_token, "p_now": now})
        conn.execute(
            q.lease_insert,
            dict(experiment_id=experiment_id, member_id=pick.member_id, worker=worker, token=token,
                 start_step=row.step, claimed_at=now),
        )
        return Lease(experiment_id, self._member(row), token, worker)

    def heartbeat(self, lease: Lease, *, lease_s: float) -> bool:
        """Extend the lease; False when it was lost (another worker owns the member now)."""
        with self._tx() as conn:
            res = conn.execute(
                sa.update(M)
                .where(M.c.experiment_id == lease.experiment_id, M.c.member_id == lease.member_id, M.c.lease_token == lease.token)
                .values(lease_expires=self._now + lease_s)
            )
            return res.rowcount == 1

    def release(self, lease: Lease, *, outcome: str = "released") -> None:
        with self._tx() as conn:
            self._release(conn, lease, outcome)

    def _release(self, conn: sa.Connection, lease: Lease, outcome: str) -> bool:
        res = conn.execute(
            sa.update(M)
            .where(M.c.experiment_id == lease.experiment_id, M.c.member_id == lease.member_id, M.c.lease_token == lease.token)
            .values(lease_token=None, lease_owner=None, lease_expires=None)
        )
        conn.execute(self._q.lease_closed, {"p_token": lease.token, "p_outcome": outcome})
        return res.rowcount == 1

    # -- reporting a ready point ----------------------------------------
    def commit_interval(self, lease: Lease, report: IntervalReport, *, release: bool = False) -> bool:
        """Record an interval's history, checkpoint and score at once; False if the lease was lost."""
        return self.finish_interval(lease, report, then="release" if release else "keep").ok

    def finish_interval(
        self,
        lease: Lease,
        report: IntervalReport,
        *,
        then: str = "release",
        exploit: ExploitOrder | None = None,
        collect_for_mode: str | None = None,
        claim_next: tuple[str, float, Iterable[int]] | None = None,
    ) -> FinishResult:
        """Everything a worker writes at a ready point, in one transaction.

        Records the interval's history, checkpoint and score; then applies
        ``exploit`` if given (the donor's checkpoint is read in the same
        transaction, so it exists); then ``then`` the lease: ``"release"`` it,
        ``"keep"`` it or ``"arrive"`` at the sync barrier (the lease is given up).
        With ``collect_for_mode``, also forgets this member's checkpoints that
        nothing refers to any more and returns their keys for deletion.
        With ``claim_next = (worker, lease_s, prefer)`` and the lease given
        up, the worker's next member is claimed in the same transaction.
        Nothing at all is written if the lease was lost.
        """
        if then not in ("release", "keep", "arrive"):
            raise ValueError(f"then must be release, keep or arrive; got {then!r}")
        exp_id, member_id = lease.experiment_id, lease.member_id
        q = self._q
        gives_up = report.done or then != "keep"
        state = "done" if report.done else ("waiting" if then == "arrive" else None)
        wants_exploit = exploit is not None and not report.done and exploit.donor != member_id
        with self._tx() as conn:
            donor = None
            if wants_exploit:
                assert exploit is not None
                # Lock both rows first, in id order: two members copying each
                # other at once then queue instead of deadlocking.
                locked = conn.execute(
                    q.exploit_rows, {"p_exp": exp_id, "p_member": member_id, "p_donor": exploit.donor}
                ).all()
                donor = next((r for r in locked if r.member_id == exploit.donor), None)
            row = conn.execute(
                q.finish(state, gives_up),
                dict(p_exp=exp_id, p_member=member_id, p_token=lease.token, p_step=report.step,
                     p_scores=codec.enc_scores(report.scores), p_key=report.checkpoint.key,
                     p_sha=report.checkpoint.sha256, p_size=report.checkpoint.size),
            ).first()
            if row is None:
                conn.rollback()
                return FinishResult(ok=False)
            now = float(row.now)
            seg = lease.member.segment_id
            if report.rows:
                conn.execute(
                    q.history_insert,
                    [
                        dict(experiment_id=exp_id, member_id=member_id, segment_id=seg, step=st,
                             metrics=codec.enc_metrics(m), created_at=now)
                        for st, m in report.rows
                    ],
                )
            conn.execute(
                q.checkpoint_insert,
                dict(experiment_id=exp_id, key=report.checkpoint.key, sha256=report.checkpoint.sha256,
                     size=report.checkpoint.size, member_id=member_id, segment_id=seg, step=report.step,
                     score=_finite_or_none(report.score), created_at=now),
            )
            if report.observation is not None:
                obs = dict(report.observation)
                obs["score_start"] = _finite_or_none(obs.get("score_start"))
                obs["score_end"] = _finite_or_none(obs.get("score_end"))
                conn.execute(q.observation_insert, dict(experiment_id=exp_id, **obs))
            exploited = None
            if wants_exploit and donor is not None and donor.ckpt_key is not None:
                assert exploit is not None
                me = _Row(member_id=member_id, segment_id=seg, step=report.step, config=lease.member.config)
                exploited = self._member(self._exploit(conn, exp_id, me, donor, exploit.config, now=now,
                                                       old_config=lease.member.config))
            if gives_up:
                outcome = "done" if report.done else ("barrier" if then == "arrive" else "released")
                conn.execute(q.lease_closed, {"p_token": lease.token, "p_outcome": outcome})
            garbage: list[str] = []
            if collect_for_mode:
                candidates = [report.checkpoint.key]
                if lease.member.checkpoint is not None:
                    candidates.append(lease.member.checkpoint.key)
                garbage = [k for (k,) in conn.execute(
                    q.forget(collect_for_mode), {"p_exp": exp_id, "p_keys": candidates}
                ).all()]
            barrier = None
            if then == "arrive" and not report.done:
                states = conn.execute(
                    sa.select(M.c.state, M.c.step).where(M.c.experiment_id == exp_id, M.c.state.in_(["active", "waiting"]))
                ).all()
                if states and all(r.state == "waiting" for r in states):
                    barrier = min(r.step for r in states)
            following = None
            if claim_next is not None and gives_up and barrier is None:
                following = self._claim_in(conn, exp_id, *claim_next)
        return FinishResult(ok=True, exploited=exploited, garbage=garbage, barrier_step=barrier, next_lease=following)

    def record_failure(self, lease: Lease, error: str, *, max_failures: int) -> str:
        """Count a failed attempt; the member restarts from its checkpoint or, past ``max_failures``, fails."""
        with self._tx() as conn:
            row = conn.execute(
                sa.select(M.c.failures).where(
                    M.c.experiment_id == lease.experiment_id, M.c.member_id == lease.member_id, M.c.lease_token == lease.token
                )
            ).first()
            if row is None:
                return "lost"
            failures = (row.failures or 0) + 1
            state = "failed" if failures > max_failures else "active"
            conn.execute(
                sa.update(M)
                .where(M.c.experiment_id == lease.experiment_id, M.c.member_id == lease.member_id, M.c.lease_token == lease.token)
                .values(failures=failures, error=error[-4000:], state=state)
            )
            self._release(conn, lease, "failed")
            return state

    # -- garbage collection ---------------------------------------------
    def release_checkpoints(self, experiment_id: int, *, mode: str, member_id: int | None = None) -> list[str]:
        """Forget checkpoints that no member refers to, except the best; return their keys to delete.

        The records go in the same transaction that checks the references, and
        an exploit copies a reference in a transaction too, so a key returned
        here can no longer be picked as a donor checkpoint.
        """
        with self._tx() as conn:
            return self._forget_unreferenced(conn, experiment_id, mode, member_id)

    def _forget_unreferenced(self, conn: sa.Connection, experiment_id: int, mode: str, member_id: int | None) -> list[str]:
        C = schema.checkpoints
        referenced = sa.select(M.c.ckpt_key).where(M.c.experiment_id == experiment_id, M.c.ckpt_key.is_not(None))
        order = C.c.score.desc() if mode == "max" else C.c.score.asc()
        best = conn.execute(
            sa.select(C.c.key).where(C.c.experiment_id == experiment_id, C.c.score.is_not(None)).order_by(order).limit(1)
        ).scalar()
        q = sa.select(C.c.key).where(C.c.experiment_id == experiment_id, C.c.key.not_in(referenced))
        if member_id is not None:
            q = q.where(C.c.member_id == member_id)
        if best is not None:
            q = q.where(C.c.key != best)
        keys = [k for (k,) in conn.execute(q).all()]
        if keys:
            conn.execute(sa.delete(C).where(C.c.experiment_id == experiment_id, C.c.key.in_(keys)))
        return keys


@dataclass(frozen=True)
class _Row:
    member_id: int
    segment_id: int
    step: int
    config: Any


def open_storage(url: str = DEFAULT_URL) -> Storage:
    """Open (and create if needed) the storage at ``url``; StorageError with a clear reason otherwise."""
    try:
        return Storage(url)
    except OperationalError as exc:  # pragma: no cover - mapped in create_engine
        raise StorageError(f"storage {mask_url(url)!r} cannot be opened: {exc.orig}") from None
