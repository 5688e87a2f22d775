"""Checkpoints on S3 (a moto server on loopback), end to end, and workers joining from the command line.

The filesystem options (endpoint, credentials) are never stored: the driver
and each ``poptrain worker`` get them on their own, from ``checkpoint_options``,
``--checkpoint-option`` or the environment.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import sqlalchemy as sa

import poptrain as pt
from poptrain.checkpoints import CheckpointStore
from poptrain.storage import Storage, schema

import scale_helpers as H
import scale_trainables as T

BUCKET = "poptrain-scale"
SECRET = "moto-s3cr3t-never-stored"


@pytest.fixture(scope="module")
def s3():
    try:
        import boto3
        import s3fs  # noqa: F401 - fsspec finds it by the s3:// protocol
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        pytest.skip(f"needs moto's server and s3fs: pip install 'moto[server]' s3fs ({exc})")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="AKIDPOPTRAIN", aws_secret_access_key=SECRET,
                 region_name="us-east-1").create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


def _options(endpoint: str) -> dict:
    return {"key": "AKIDPOPTRAIN", "secret": SECRET, "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}


def _dump(st: Storage) -> str:
    """Every row of every poptrain table, as text."""
    out = []
    with st.engine.connect() as conn:
        for table in schema.metadata.sorted_tables:
            out += [repr(tuple(r)) for r in conn.execute(sa.select(table)).all()]
    return "\n".join(out)


def _check_done(url: str, name: str, budget: int, options: dict) -> None:
    st = Storage(url)
    exp = st.get_experiment(name)
    rows = H.check_budget_and_history(st, exp.id, budget)
    H.check_leases(st, exp.id, rows, interval=4)
    store = CheckpointStore(exp.spec["checkpoints"], **options)
    assert store.url.startswith(f"s3://{BUCKET}/")
    H.check_checkpoints(st, exp.id, store)
    assert store.keys(name), "no checkpoint on S3"
    assert SECRET not in _dump(st)
    st.close()


@pytest.mark.slow
def test_run_with_s3_checkpoints_and_local_workers(s3, tmp_path, monkeypatch):
    monkeypatch.setenv("POPTRAIN_TEST_STEP_S", "0.005")
    url = f"sqlite:///{tmp_path}/p.db"
    exp = T.walker_experiment("s3run", population=4, budget=12, interval=4)
    res = pt.run(exp, storage=url, checkpoints=f"s3://{BUCKET}/s3run", checkpoint_options=_options(s3),
                 workers=2, executor="local")
    assert res.status == "done" and res.lineage
    _check_done(url, "s3run", 12, _options(s3))


@pytest.mark.slow
def test_cli_workers_join_with_options_from_flags_and_environment(s3, tmp_path):
    url = f"sqlite:///{tmp_path}/p.db"
    exp_file = T.experiment_file(tmp_path / "exp.py", name="s3cli", population=4, budget=12, interval=4)
    creds = {"AWS_ACCESS_KEY_ID": "AKIDPOPTRAIN", "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1",
             "POPTRAIN_TEST_STEP_S": "0.01"}
    endpoint = f"--checkpoint-option=client_kwargs.endpoint_url={s3}"
    made = H.cli("run", exp_file, "--storage", url, "--checkpoints", f"s3://{BUCKET}/s3cli", "--workers", "0",
                 endpoint, env=creds)
    assert made.returncode == 0, made.stderr
    assert "poptrain worker" in made.stdout
    # One worker takes the endpoint from a flag and credentials from AWS variables, the other all from FSSPEC_S3.
    fsspec_env = {"FSSPEC_S3": '{"key": "AKIDPOPTRAIN", "secret": "%s", "client_kwargs": {"endpoint_url": "%s", '
                               '"region_name": "us-east-1"}}' % (SECRET, s3), "POPTRAIN_TEST_STEP_S": "0.01"}
    workers = [
        subprocess.Popen([sys.executable, "-m", "poptrain.cli.main", "worker", "--storage", url, "--name", "s3cli", *extra],
                         env=H.cli_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for extra, env in (([endpoint], creds), ([], fsspec_env))
    ]
    outs = [w.communicate(timeout=120) for w in workers]
    for w, (out, err) in zip(workers, outs):
        assert w.returncode == 0, out + err
        assert "worker done" in out
        assert SECRET not in out + err
    _check_done(url, "s3cli", 12, _options(s3))
    status = H.cli("status", "--storage", url, "--json")
    assert status.returncode == 0 and SECRET not in status.stdout


def test_checkpoint_option_flag_must_be_key_value(tmp_path):
    out = H.cli("worker", "--storage", f"sqlite:///{tmp_path}/p.db", "--checkpoint-option", "no-equals-sign")
    assert out.returncode == 2
    assert "KEY=VALUE" in out.stderr and "Traceback" not in out.stderr
