"""Shared fixtures: real SQLite files and, when configured, a real PostgreSQL server."""

from __future__ import annotations

import os
import uuid

import pytest

PG_ENV = "POPTRAIN_TEST_POSTGRES_URL"


def postgres_admin_url() -> str | None:
    url = os.environ.get(PG_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{PG_ENV} is not set on CI; .ci/run starts PostgreSQL and sets it")
        pytest.skip(f"{PG_ENV} is not set (start one with: eval \"$(bash .ci/postgres.sh)\")")
    return url


@pytest.fixture
def postgres_url():
    """A fresh, empty database on the test server; dropped afterwards."""
    import sqlalchemy as sa

    admin = postgres_admin_url().replace("postgresql://", "postgresql+psycopg://", 1)
    name = "pt_" + uuid.uuid4().hex[:12]
    eng = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    base = admin.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with eng.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    eng.dispose()


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path}/poptrain.db"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def storage_url(request, tmp_path):
    """Every storage backend: the conformance suites run unchanged on each."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/poptrain.db"
    return request.getfixturevalue("postgres_url")
