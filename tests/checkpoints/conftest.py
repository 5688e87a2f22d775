"""Stores for the conformance tests: a local folder, memory://, and S3 served by moto over loopback."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from poptrain.checkpoints import CheckpointStore

S3_BUCKET = "poptrain-test"
S3_HINT = "the S3 checkpoint tests need moto's server and s3fs: pip install 'moto[server]' s3fs"


@pytest.fixture(scope="session")
def s3_options() -> Any:
    """Storage options for a moto S3 server on 127.0.0.1 with one empty bucket."""
    try:
        import boto3
        import s3fs  # noqa: F401 - fsspec finds it by the s3:// protocol
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        pytest.skip(f"{S3_HINT} ({exc})")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # moto accepts any credentials; explicit ones keep a developer's real AWS config out of the tests.
    creds = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}
    boto3.client("s3", endpoint_url=endpoint, **creds).create_bucket(Bucket=S3_BUCKET)
    yield {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
    }
    server.stop()


def _make_store(kind: str, tmp_path: Any, request: pytest.FixtureRequest) -> CheckpointStore:
    unique = uuid.uuid4().hex[:12]
    if kind == "local":
        return CheckpointStore(str(tmp_path / "ckpts"))
    if kind == "memory":
        store = CheckpointStore(f"memory://poptrain-test-{unique}")
        request.addfinalizer(lambda: store.fs.rm(store.url, recursive=True) if store.fs.exists(store.url) else None)
        return store
    if kind == "s3":
        options = request.getfixturevalue("s3_options")
        return CheckpointStore(f"s3://{S3_BUCKET}/{unique}/ckpts", **options)
    raise ValueError(kind)


@pytest.fixture(params=["local", "memory", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> CheckpointStore:
    """One empty store per test, on each kind of filesystem."""
    return _make_store(request.param, tmp_path, request)


@pytest.fixture
def store_of(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    """A factory: ``store_of("local" | "memory" | "s3")`` gives a fresh empty store."""
    return lambda kind: _make_store(kind, tmp_path / uuid.uuid4().hex[:8], request)
