"""The Ray executor on a real local Ray instance: placement, per-worker resources, lost workers restarted."""

from __future__ import annotations

import os
import signal

import pytest

import poptrain as pt
from poptrain.errors import ConfigError
from poptrain.storage import Storage
from poptrain.trainable import load_file

import scale_helpers as H
import scale_trainables as T

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def ray_cluster():
    try:
        import ray
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("ray is not installed on CI; install the 'ray' extra")
        pytest.skip("ray is not installed (pip install 'poptrain[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"POPTRAIN_TEST_STEP_S": "0.03"}})
    yield ray
    ray.shutdown()


def _experiment(tmp_path, name: str, **kw):
    return load_file(T.experiment_file(tmp_path / f"{name}.py", name=name, **kw)).experiment


def test_ray_workers_train_the_population_with_their_resources(ray_cluster, tmp_path):
    from poptrain.executors.ray import RayExecutor

    exp = _experiment(tmp_path, "rayrun", population=4, budget=16, interval=4)
    ex = RayExecutor(num_cpus=1)
    url = f"sqlite:///{tmp_path}/p.db"
    res = pt.run(exp, storage=url, checkpoints=str(tmp_path / "ck"), workers=2, executor=ex)
    assert res.status == "done"
    st = Storage(url)
    exp_id = st.get_experiment("rayrun").id
    rows = H.check_budget_and_history(st, exp_id, 16)
    H.check_leases(st, exp_id, rows, interval=4)
    assert len(ex.results) == 2 and ex.restarts == 0
    assert all(r["resources"].get("CPU") == 1.0 for r in ex.results), ex.results
    assert {r["pid"] for r in ex.results} != {os.getpid()}
    # Only the Ray workers trained: every lease names one of their processes.
    assert {H.pid_of(le["worker"]) for le in st.leases(exp_id)} <= {r["pid"] for r in ex.results}
    st.close()


def test_ray_worker_killed_mid_run_is_replaced_and_its_member_taken_over(ray_cluster, tmp_path):
    from poptrain.executors.ray import RayExecutor

    exp = _experiment(tmp_path, "raykill", population=4, budget=40, interval=4)
    url = f"sqlite:///{tmp_path}/p.db"
    ex = RayExecutor(num_cpus=1, poll_s=0.1)
    victims: list[int] = []

    def kill_one(progress: dict) -> None:
        if victims:
            return
        st = Storage(url)
        try:
            exp_id = st.get_experiment("raykill").id
            owners = [m.lease_owner for m in st.members(exp_id) if m.lease_owner]
            if owners and st.count_history(exp_id) >= 16:
                victims.append(H.pid_of(owners[0]))
                os.kill(victims[0], signal.SIGKILL)
        finally:
            st.close()

    res = pt.run(exp, storage=url, checkpoints=str(tmp_path / "ck"), workers=2, executor=ex, progress=kill_one,
                 lease_s=30)
    assert victims and ex.restarts >= 1
    assert res.status == "done"
    st = Storage(url)
    exp_id = st.get_experiment("raykill").id
    rows = H.check_budget_and_history(st, exp_id, 40)
    H.check_leases(st, exp_id, rows, interval=4)
    taken = [le for le in st.leases(exp_id) if le["outcome"] == "taken_over"]
    assert taken and all(H.pid_of(le["worker"]) in victims for le in taken)
    st.close()


def test_cli_run_with_ray_executor_joins_a_cluster(ray_cluster, tmp_path):
    address = ray_cluster.get_runtime_context().gcs_address
    exp_file = T.experiment_file(tmp_path / "cli.py", name="raycli", population=2, budget=8, interval=4)
    out = H.cli("run", exp_file, "--storage", f"sqlite:///{tmp_path}/p.db", "--checkpoints", str(tmp_path / "ck"),
                "--executor", "ray", "--ray-address", address, "--num-cpus", "1", "--workers", "2", "--no-progress")
    assert out.returncode == 0, out.stdout + out.stderr
    res = pt.load_result(f"sqlite:///{tmp_path}/p.db", "raycli")
    assert res.status == "done" and all(m["step"] == 8 for m in res.members)


def test_bad_resources_are_refused_at_construction():
    from poptrain.executors.ray import RayExecutor

    with pytest.raises(ConfigError, match="'num_gpus'.*-1"):
        RayExecutor(num_gpus=-1)
    with pytest.raises(ConfigError, match="'num_cpus'"):
        RayExecutor(num_cpus="two")  # type: ignore[arg-type]
