"""SIGKILL the ``poptrain run`` driver mid-run, then run the same command again.

The driver's worker processes cannot be told to stop by a driver killed
outright. They notice their parent is gone, commit the interval they are
training, hand their member back and exit, so they neither train beside the
workers of the next driver nor lose work. The second ``poptrain run`` finishes
the experiment.

"Steps trained" counts every call of the trainable's ``step()`` (each appends
a line to a log file), committed or not. Exploit is switched off (burn-in
beyond the budget), so the committed history is exactly population x budget
steps and anything above it is work lost to the crash.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from poptrain.storage import Storage

import scale_helpers as H
import scale_trainables as T

POPULATION, BUDGET, INTERVAL = 4, 40, 4


@pytest.mark.slow
def test_killed_driver_orphans_stop_and_the_same_command_finishes(tmp_path):
    url = f"sqlite:///{tmp_path}/p.db"
    steps = tmp_path / "steps.log"
    exp_file = T.experiment_file(tmp_path / "exp.py", name="crash", population=POPULATION, budget=BUDGET,
                                 interval=INTERVAL, burn_in=10**6)
    argv = [sys.executable, "-m", "poptrain.cli.main", "run", exp_file, "--storage", url,
            "--checkpoints", str(tmp_path / "ck"), "--workers", "2", "--no-progress", "--lease", "60"]
    env = H.cli_env({"POPTRAIN_TEST_STEP_S": "0.03", "POPTRAIN_TEST_STEP_LOG": str(steps)})

    driver = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    st = None
    try:
        deadline = time.monotonic() + 60
        while True:
            assert driver.poll() is None, driver.stdout.read()
            assert time.monotonic() < deadline, "the driver made no progress"
            if os.path.exists(f"{tmp_path}/p.db"):
                st = st or Storage(url)
                exps = st.list_experiments()
                if exps and st.count_history(exps[0].id) >= POPULATION * BUDGET // 3:
                    break
            time.sleep(0.1)
        workers = H.children_of(driver.pid)
        assert len(workers) >= 2, workers
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    finally:
        if driver.poll() is None:
            driver.kill()
    exp_id = st.list_experiments()[0].id

    # The orphans notice within a second, finish their interval and exit.
    deadline = time.monotonic() + 15
    while any(H.alive(p) for p in workers):
        assert time.monotonic() < deadline, f"orphaned workers still running: {[p for p in workers if H.alive(p)]}"
        time.sleep(0.1)
    assert not st.is_finished(exp_id)
    assert all(m.lease_owner is None for m in st.members(exp_id)), "an orphan kept its member leased"

    t0 = time.monotonic()
    again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    assert time.monotonic() - t0 < 50, "the second run waited for leases of the dead run to expire"

    rows = H.check_budget_and_history(st, exp_id, BUDGET)
    H.check_leases(st, exp_id, rows, interval=INTERVAL)
    assert len(rows) == POPULATION * BUDGET
    trained = len(steps.read_text().splitlines())
    assert trained <= POPULATION * BUDGET + POPULATION * INTERVAL, trained
    assert trained == POPULATION * BUDGET, f"{trained - POPULATION * BUDGET} steps were trained but lost"
    st.close()
