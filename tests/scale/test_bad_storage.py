"""Bad input and security: unreachable databases, passwords, a database outage mid-run, tampered checkpoints."""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

import poptrain as pt
from poptrain.errors import StorageUnavailable
from poptrain.executors.job import WorkerJob
from poptrain.storage import CheckpointRecord, IntervalReport, Storage
from poptrain.storage.retry import RetryingStorage

import scale_helpers as H
import scale_trainables as T

PASSWORD = "hunter2-never-printed"


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_unreachable_postgres_gives_one_clear_error_without_the_password(tmp_path):
    url = f"postgresql://bob:{PASSWORD}@127.0.0.1:{_closed_port()}/pbt"
    exp_file = T.experiment_file(tmp_path / "exp.py", name="x", population=2, budget=4)
    for args in (["list"], ["status"], ["run", exp_file, "--workers", "1", "--no-progress"]):
        out = H.cli(*args, "--storage", url)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1, lines
        assert lines[0].startswith(f"poptrain {args[0]}: storage 'postgresql://bob:***@127.0.0.1:")
        assert "cannot be opened" in lines[0] and "Connection refused" in lines[0]
        assert PASSWORD not in out.stdout + out.stderr


def test_worker_waits_a_bounded_time_for_an_unreachable_database(tmp_path):
    url = f"postgresql://bob:{PASSWORD}@127.0.0.1:{_closed_port()}/pbt"
    t0 = time.monotonic()
    out = H.cli("worker", "--storage", url, "--name", "x", "--wait", "1.5")
    took = time.monotonic() - t0
    assert out.returncode == 2, out.stderr
    assert PASSWORD not in out.stdout + out.stderr and "Traceback" not in out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert "cannot be reached" in lines[0] and "retrying for up to 1.5 s" in lines[0]
    assert lines[-1].startswith("poptrain worker: storage 'postgresql://bob:***@")
    assert "could not be reached for 1.5 s" in lines[-1]
    assert len(lines) == 2, lines
    assert 1.0 < took < 15


def test_retrying_storage_does_not_wait_for_errors_that_waiting_cannot_fix(tmp_path):
    with pytest.raises(StorageUnavailable, match="bob:\\*\\*\\*@"):
        RetryingStorage(f"postgresql://bob:{PASSWORD}@127.0.0.1:{_closed_port()}/pbt", retry_s=0)
    st = RetryingStorage(f"sqlite:///{tmp_path}/p.db", retry_s=30)
    exp = st.create_experiment("e", {}, [{"a": 1}])
    with st.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE poptrain_history")
    t0 = time.monotonic()
    with pytest.raises(sa.exc.OperationalError, match="no such table"):
        st.count_history(exp.id)
    assert time.monotonic() - t0 < 5


@pytest.mark.slow
@pytest.mark.postgres
def test_worker_rides_out_a_database_outage_and_keeps_its_progress(postgres_url, tmp_path):
    """The CLI worker reaches PostgreSQL through a proxy that the test cuts for 3 s mid-run.

    No exploits (burn-in beyond the budget), so every step() call must end
    up in the history exactly once: the interval trained across the outage
    is committed when the database is back, not lost.
    """
    steps = tmp_path / "steps.log"
    env = {"POPTRAIN_TEST_STEP_S": "0.02", "POPTRAIN_TEST_STEP_LOG": str(steps)}
    exp_file = T.experiment_file(tmp_path / "exp.py", name="outage", population=3, budget=48, interval=4,
                                 burn_in=10**6)
    made = H.cli("run", exp_file, "--storage", postgres_url, "--checkpoints", str(tmp_path / "ck"), "--workers", "0")
    assert made.returncode == 0, made.stderr
    real = make_url(postgres_url)
    assert real.password and real.password not in made.stdout + made.stderr
    assert f"{real.username}:***@" in made.stdout
    proxy = H.Proxy(real.port)
    via_proxy = real.set(port=proxy.port).render_as_string(hide_password=False)
    worker = subprocess.Popen(
        [sys.executable, "-m", "poptrain.cli.main", "worker", "--storage", via_proxy, "--name", "outage", "--wait", "60"],
        env=H.cli_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    st = Storage(postgres_url)
    exp_id = st.get_experiment("outage").id
    try:
        deadline = time.monotonic() + 60
        while st.count_history(exp_id) < 3 * 48 // 3:
            assert worker.poll() is None and time.monotonic() < deadline, worker.communicate()
            time.sleep(0.05)
        proxy.cut()
        time.sleep(3.0)
        assert worker.poll() is None, "the worker gave up during the outage"
        proxy.restore()
        out, err = worker.communicate(timeout=120)
    finally:
        if worker.poll() is None:
            worker.kill()
        proxy.cut()
    assert worker.returncode == 0, out + err
    assert "cannot be reached" in err and "answers again" in err
    assert real.password and real.password not in out + err
    rows = H.check_budget_and_history(st, exp_id, 48)
    H.check_leases(st, exp_id, rows, interval=4)
    trained = len(steps.read_text().splitlines())
    assert trained == len(rows) == 3 * 48, f"{trained} steps trained for {len(rows)} recorded"
    st.close()


class _Payload:
    marker = ""

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_tampered_checkpoint_is_refused_recorded_and_never_executed(tmp_path):
    url = f"sqlite:///{tmp_path}/p.db"
    exp = T.walker_experiment("tamper", population=3, budget=12, interval=4, burn_in=10**6, max_failures=1)
    pt.run(exp, storage=url, checkpoints=str(tmp_path / "ck"), workers=0)
    st = Storage(url)
    record = st.get_experiment("tamper")
    job = WorkerJob(storage_url=url, checkpoints_url=record.spec["checkpoints"], experiment_id=record.id,
                    spec=record.spec, experiment=exp)
    job.make_worker(should_stop=lambda: all(m.step >= 4 for m in st.members(record.id))).run()

    victim = st.members(record.id)[0]
    assert victim.step == 4
    path = tmp_path / "ck" / victim.checkpoint.key
    _Payload.marker = str(tmp_path / "code-ran")
    path.write_bytes(pickle.dumps(_Payload()))  # what an attacker with write access to the folder could plant

    res = pt.run(exp, storage=url, checkpoints=str(tmp_path / "ck"), workers=1, executor="inline")
    assert not os.path.exists(_Payload.marker), "code from a checkpoint ran"
    states = {m["member"]: m for m in res.members}
    assert states[0]["state"] == "failed" and states[0]["step"] == 4
    assert states[0]["failures"] == 2
    assert "sha256 mismatch" in states[0]["error"] and "refusing to load" in states[0]["error"]
    assert states[1]["state"] == states[2]["state"] == "done"
    assert not [h for h in res.history if h["member"] == 0 and h["step"] > 4], "the tampered member trained on"
    st.close()


def test_commit_whose_answer_was_lost_is_not_mistaken_for_a_lost_lease(storage_url, monkeypatch):
    """The connection breaks after COMMIT reached the database: the retry must see the commit, not a lost lease
    (a worker that thinks its lease was lost drops the interval and deletes the checkpoint it just recorded)."""
    import sqlalchemy as sa

    from poptrain.storage import CheckpointRecord, IntervalReport

    st = RetryingStorage(storage_url, retry_s=10, backoff_s=0.01)
    exp = st.create_experiment("lost-reply", {}, [{"a": 1}, {"a": 2}])
    lease = st.claim(exp.id, "w", lease_s=30)
    original, calls = Storage.finish_interval, []

    def commit_then_break(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        calls.append(result.ok)
        if len(calls) == 1:
            raise sa.exc.OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))
        return result

    monkeypatch.setattr(Storage, "finish_interval", commit_then_break)
    report = IntervalReport(step=2, rows=[(1, {"s": 1.0}), (2, {"s": 2.0})], checkpoint=CheckpointRecord("k", "0" * 64, 1),
                            scores=[1.0, 2.0], score=2.0, done=False)
    result = st.finish_interval(lease, report, then="release")
    assert result.ok and calls == [True]
    assert st.count_history(exp.id) == 2
    assert st.members(exp.id)[lease.member_id].checkpoint.key == "k"


@pytest.mark.postgres
def test_pooled_connections_lost_with_a_restart_cost_one_retry(postgres_url, caplog):
    """A retrying storage does not ping its pooled connections: after a cut, a call finds
    its connection dead, logs the driver's reason and succeeds on its retry."""
    real = make_url(postgres_url)
    proxy = H.Proxy(real.port)
    via_proxy = real.set(port=proxy.port).render_as_string(hide_password=False)
    try:
        plain, retrying = Storage(via_proxy), RetryingStorage(via_proxy, retry_s=20, backoff_s=0.05)
        exp = plain.create_experiment("cut", {"population": 2}, [{"lr": 0.1}, {"lr": 0.2}])
        lease = retrying.claim(exp.id, "w", lease_s=60)
        assert len(retrying.snapshot(exp.id).members) == 2 and len(plain.snapshot(exp.id).members) == 2
        proxy.cut()
        proxy.restore()
        # The plain storage pings before use: its read goes through on a new connection.
        assert len(plain.snapshot(exp.id).members) == 2
        with caplog.at_level("WARNING", logger="poptrain.storage"):
            assert len(retrying.snapshot(exp.id).members) == 2
        assert "cannot be reached" in caplog.text and "answers again" in caplog.text
        proxy.cut()
        proxy.restore()
        # A heartbeat is not retried (its thread logs a failure and renews on its next beat).
        with pytest.raises(sa.exc.OperationalError):
            retrying.heartbeat(lease, lease_s=60)
        assert retrying.heartbeat(lease, lease_s=60)
        report = IntervalReport(step=2, rows=[(1, {"s": 1.0}), (2, {"s": 2.0})],
                                checkpoint=CheckpointRecord("k", "0" * 64, 1), scores=[2.0], score=2.0, done=False)
        assert retrying.finish_interval(lease, report).ok
        assert [h["step"] for h in plain.history(exp.id)] == [1, 2]
    finally:
        proxy.cut()
