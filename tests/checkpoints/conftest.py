"""Fixtures: stores on a local folder, memory:// and S3 (moto over loopback), and exact round-trip checks."""

from __future__ import annotations

import math
import sys
import uuid
from typing import Any

import numpy as np
import pytest

from poptrain.checkpoints import CheckpointStore, dumps, loads

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


@pytest.fixture
def assert_same() -> Any:
    """``assert_same(a, b)``: deep equality demanding identical types, dtypes, key types and key order."""
    return _assert_same


@pytest.fixture
def roundtrip(assert_same: Any) -> Any:
    """``roundtrip(state)``: dumps, loads, check the result is the same, return it."""

    def check(state: Any) -> Any:
        back = loads(dumps(state))
        assert_same(state, back)
        return back

    return check


def _is_tensor(x: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _assert_same(a: Any, b: Any, path: str = "state") -> None:
    """Deep equality that also demands identical types, key types and key order."""
    assert type(a) is type(b), f"{path}: {type(a)} != {type(b)}"
    if isinstance(a, dict):
        assert len(a) == len(b), path
        assert [(type(k), k) for k in a] == [(type(k), k) for k in b] or _nan_keys_equal(a, b), path
        for (ka, va), vb in zip(a.items(), b.values()):
            _assert_same(va, vb, f"{path}[{ka!r}]")
        assert getattr(a, "_metadata", None) == getattr(b, "_metadata", None), f"{path}._metadata"
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float):
        assert a == b or (math.isnan(a) and math.isnan(b)), path
        assert math.copysign(1, a) == math.copysign(1, b), path
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, path
        assert a.tobytes() == b.tobytes(), path
    elif isinstance(a, np.generic):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), path
    elif _is_tensor(a):
        assert a.dtype == b.dtype and a.shape == b.shape, path
        assert b.device.type == "cpu" and a.requires_grad == b.requires_grad, path
        assert _tensor_bytes(a) == _tensor_bytes(b), path
    else:
        assert a == b, path


def _nan_keys_equal(a: dict, b: dict) -> bool:
    return all(type(x) is type(y) and (x == y or x != x and y != y) for x, y in zip(a, b))


def _tensor_bytes(t: Any) -> bytes:
    import torch

    flat = t.detach().cpu().resolve_conj().contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""
