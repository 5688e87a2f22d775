"""Open a database URL: SQLite tuned for many local processes, PostgreSQL for many machines."""

from __future__ import annotations

import os
import re
import time

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from poptrain._optional import require
from poptrain.errors import StorageError, StorageUnavailable
from poptrain.storage import schema

DEFAULT_URL = "sqlite:///poptrain.db"
READ_ONLY = "poptrain_read_only"

_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@]*:)(?P<pw>[^@/]*)(?P<tail>@)")


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (URLs are printed; passwords never are).

    Example:
        >>> mask_url("postgresql://bob:secret@db:5432/pbt")
        'postgresql://bob:***@db:5432/pbt'
    """
    return _PASSWORD.sub(lambda m: f"{m['head']}***{m['tail']}", str(url))


def _normalise(url: str) -> str:
    # psycopg 3 is the driver we support; plain postgresql:// would pick psycopg2.
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def create_engine(url: str, *, pre_ping: bool = True) -> Engine:
    """A SQLAlchemy engine for ``url`` with the schema created and its version checked.

    ``pre_ping``: test a pooled server connection before each use.
    """
    norm = _normalise(url)
    try:
        parsed = make_url(norm)
    except ArgumentError as exc:
        raise StorageError(f"storage URL {mask_url(url)!r} is not a database URL: {exc}") from None
    if parsed.get_backend_name() == "postgresql":
        require("psycopg", feature="PostgreSQL storage")
    try:
        if parsed.get_backend_name() == "sqlite":
            engine = _sqlite_engine(norm)
        else:
            engine = sa.create_engine(norm, pool_pre_ping=pre_ping, pool_size=2, max_overflow=4)
    except (NoSuchModuleError, ArgumentError) as exc:
        raise StorageError(f"storage URL {mask_url(url)!r} cannot be opened: {exc}") from None
    except ImportError as exc:  # a dialect whose driver is not installed (mysql://, ...)
        raise StorageError(
            f"storage URL {mask_url(url)!r} cannot be opened: its database driver is missing ({exc}); "
            "poptrain supports sqlite:/// and postgresql:// URLs"
        ) from None
    _create_schema(engine, url)
    return engine


def _sqlite_engine(url: str) -> Engine:
    db = make_url(url).database
    if db and db != ":memory:" and not db.startswith("file:"):
        parent = os.path.dirname(os.path.abspath(db))
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"storage {mask_url(url)!r} cannot be opened: cannot create {parent}: {exc.strerror}") from None
    engine = sa.create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # noqa: ANN001
        # Let SQLAlchemy's "begin" event issue BEGIN IMMEDIATE: pysqlite's own
        # deferred BEGIN would let two writers read, then deadlock on upgrade.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # noqa: ANN001
        # Reads (marked by Storage._read) take no write lock, so a snapshot
        # never holds up another worker's commit. Sent on the driver's own
        # connection: through SQLAlchemy's execute it cost more than the
        # rest of an empty transaction (180 vs 70 us).
        conn.connection.driver_connection.execute("BEGIN" if conn.info.get(READ_ONLY) else "BEGIN IMMEDIATE")

    return engine


def _create_schema(engine: Engine, url: str) -> None:
    last: Exception | None = None
    for attempt in range(5):
        try:
            with engine.begin() as conn:
                schema.metadata.create_all(conn)
                row = conn.execute(sa.select(schema.meta.c.value).where(schema.meta.c.key == "schema_version")).first()
                if row is None:
                    conn.execute(sa.insert(schema.meta).values(key="schema_version", value=str(schema.SCHEMA_VERSION)))
                elif int(row[0]) != schema.SCHEMA_VERSION:
                    raise StorageError(
                        f"storage {mask_url(url)!r} has poptrain schema version {row[0]}, "
                        f"this poptrain reads version {schema.SCHEMA_VERSION}; use a matching poptrain release"
                    )
            return
        except sa.exc.IntegrityError as exc:  # two processes created the schema at once
            last = exc
            time.sleep(0.1)
            continue
        except sa.exc.DBAPIError as exc:
            last = exc
            if "locked" in str(exc).lower() or "already exists" in str(exc).lower():
                time.sleep(0.2 * (attempt + 1))
                continue
            break
    # A server that is down or unreachable may come back: callers that can wait retry on StorageUnavailable.
    error = StorageUnavailable if isinstance(last, (sa.exc.OperationalError, sa.exc.InterfaceError)) else StorageError
    raise error(f"storage {mask_url(url)!r} cannot be opened: {_short(last)}") from None


def _short(exc: Exception | None) -> str:
    if exc is None:
        return "unknown error"
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    return mask_url(text[0] if text else type(exc).__name__)


def now_expr(engine: Engine) -> sa.ColumnElement[float]:
    """Seconds since the epoch, read from the database clock (one clock for all machines)."""
    if engine.dialect.name == "sqlite":
        return sa.literal_column("((julianday('now') - 2440587.5) * 86400.0)")
    return sa.literal_column("extract(epoch from clock_timestamp())")
