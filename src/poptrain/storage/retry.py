"""A storage that rides out a database restart: calls are retried with backoff for a bounded time.

A worker that loses its database mid-run keeps what it holds in memory (the
interval it just trained, its member's lease token) and goes on once the
database answers again; if that takes longer than ``retry_s`` it stops with
one clear :class:`~poptrain.errors.StorageUnavailable`. While the database is
away the lease is not renewed, so an outage longer than the lease lets
another worker take the member over, and the refused commit is then dropped
like any lost lease's.

Example:
    >>> st = RetryingStorage("sqlite://", retry_s=5)
    >>> st.list_experiments()
    []
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, TypeVar

import sqlalchemy as sa

from poptrain.errors import StorageUnavailable
from poptrain.storage import schema
from poptrain.storage.engine import mask_url
from poptrain.storage.records import IntervalReport, Lease
from poptrain.storage.store import FinishResult, Storage

log = logging.getLogger("poptrain.storage")

T = TypeVar("T")

_RETRIED = (
    "claim", "release", "record_failure", "snapshot", "is_finished", "barrier_step", "apply_generation",
    "get_experiment", "list_experiments", "members", "count_history", "set_experiment_status", "now",
)


_NOT_TRANSIENT = ("no such ", "near ", "syntax error", "table ", "duplicate column")


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` says the database could not be reached (rather than that a statement was wrong)."""
    if isinstance(exc, StorageUnavailable):
        return True
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if exc.connection_invalidated or isinstance(exc, sa.exc.InterfaceError):
        return True
    # SQLite reports a wrong statement ("no such table") as an OperationalError too; waiting cannot fix that.
    return isinstance(exc, sa.exc.OperationalError) and not reason(exc).startswith(_NOT_TRANSIENT)


def reason(exc: BaseException) -> str:
    """The first line of the driver's message, with any password masked."""
    orig = getattr(exc, "orig", None)
    lines = str(orig if orig is not None else exc).strip().splitlines()
    return mask_url(lines[0] if lines else type(exc).__name__)


class RetryingStorage(Storage):
    """:class:`Storage` whose calls wait up to ``retry_s`` seconds for an unreachable database.

    Args:
        url: the database URL.
        retry_s: how long one call keeps retrying a database that cannot be
            reached, with exponential backoff from ``backoff_s`` to ``max_backoff_s``.
    """

    # Every call is retried, so a pooled connection that died with a database
    # restart costs one retry instead of a ping on every checkout.
    _pre_ping = False

    def __init__(self, url: str, *, retry_s: float = 60.0, backoff_s: float = 0.2, max_backoff_s: float = 5.0) -> None:
        self.retry_s, self.backoff_s, self.max_backoff_s = float(retry_s), backoff_s, max_backoff_s
        self.url = url
        self._retry(lambda: Storage.__init__(self, url), "open")

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url, "retry_s": self.retry_s}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["url"], retry_s=state["retry_s"])  # type: ignore[misc]

    def _retry(self, fn: Callable[[], T], what: str) -> T:
        deadline = time.monotonic() + self.retry_s
        delay, waiting = self.backoff_s, False
        while True:
            try:
                out = fn()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                if time.monotonic() + delay > deadline:
                    raise StorageUnavailable(
                        f"storage {mask_url(self.url)!r} could not be reached for {self.retry_s:g} s ({what}): {reason(exc)}"
                    ) from None
                if not waiting:
                    log.warning("storage %s cannot be reached (%s); retrying for up to %g s",
                                mask_url(self.url), reason(exc), self.retry_s)
                    waiting = True
                time.sleep(delay)
                delay = min(self.max_backoff_s, delay * 2)
                continue
            if waiting:
                log.warning("storage %s answers again", mask_url(self.url))
            return out

    def finish_interval(self, lease: Lease, report: IntervalReport, **kwargs: Any) -> FinishResult:
        """Retried like the others; a commit whose answer was lost is recognised, not reported as a lost lease."""
        attempts = 0

        def attempt() -> FinishResult:
            nonlocal attempts
            attempts += 1
            if attempts > 1 and self._committed(lease, report, kwargs.get("then", "release")):
                barrier = self.barrier_step(lease.experiment_id) if kwargs.get("then") == "arrive" else None
                return FinishResult(ok=True, barrier_step=barrier)
            return Storage.finish_interval(self, lease, report, **kwargs)

        return self._retry(attempt, "finish_interval")

    def _committed(self, lease: Lease, report: IntervalReport, then: str) -> bool:
        """Whether an earlier attempt of this finish_interval committed before the connection broke."""
        L, M = schema.leases, schema.members
        with self.engine.connect() as conn:
            if then == "keep" and not report.done:
                row = conn.execute(
                    sa.select(M.c.lease_token, M.c.step, M.c.ckpt_key)
                    .where(M.c.experiment_id == lease.experiment_id, M.c.member_id == lease.member_id)
                ).first()
                return row is not None and row.lease_token == lease.token and row.step == report.step \
                    and row.ckpt_key == report.checkpoint.key
            outcome = conn.execute(sa.select(L.c.outcome).where(L.c.token == lease.token)).scalar()
        return outcome in ("released", "done", "barrier")


def _retried(name: str) -> Callable[..., Any]:
    method = getattr(Storage, name)

    def call(self: RetryingStorage, *args: Any, **kwargs: Any) -> Any:
        return self._retry(lambda: method(self, *args, **kwargs), name)

    call.__name__ = name
    call.__doc__ = method.__doc__
    return call


for _name in _RETRIED:
    setattr(RetryingStorage, _name, _retried(_name))
