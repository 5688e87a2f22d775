"""The command line, run for real as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXE = [sys.executable, "-m", "poptrain.cli.main"]


def cli(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.run([*EXE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"poptrain {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("cli")
    out = cli("run", str(ROOT / "examples" / "quadratic.py"), "--workers", "2", "--no-progress", cwd=tmp)
    assert "best: member" in out.stdout and "schedule" in out.stdout
    return tmp


def test_run_then_inspect_with_json(finished):
    best = json.loads(cli("best", "--json", cwd=finished).stdout)
    assert set(best) >= {"member", "score", "step", "config", "schedule"}
    assert best["score"] >= 1.19 and best["step"] == 200
    assert all(set(s) >= {"start_step", "end_step", "config", "donor"} for s in best["schedule"])
    assert best["schedule"][0]["start_step"] == 0 and best["schedule"][-1]["end_step"] == 200
    lineage = json.loads(cli("lineage", "--json", cwd=finished).stdout)
    assert lineage and all(set(e) >= {"member", "step", "donor", "donor_step", "old_config", "new_config"} for e in lineage)
    history = json.loads(cli("history", "--json", cwd=finished).stdout)
    assert all(set(h) == {"member", "segment", "step", "metrics"} for h in history)
    assert {h["member"] for h in history} == {0, 1}
    status = json.loads(cli("status", "--json", cwd=finished).stdout)
    assert [s["member"] for s in status] == [0, 1] and all(s["state"] == "done" for s in status)
    assert "quadratic\tdone" in cli("list", cwd=finished).stdout


def test_running_a_finished_experiment_prints_its_result(finished):
    before = cli("history", "--json", cwd=finished).stdout
    out = cli("run", str(ROOT / "examples" / "quadratic.py"), "--no-progress", cwd=finished)
    assert "best: member" in out.stdout
    assert cli("history", "--json", cwd=finished).stdout == before


def test_file_without_experiment(tmp_path):
    f = tmp_path / "empty.py"
    f.write_text("x = 1\n")
    proc = cli("run", str(f), cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert "defines no module-level `experiment`" in proc.stderr and "Traceback" not in proc.stderr


def test_unknown_experiment_and_empty_storage(tmp_path):
    proc = cli("status", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "holds no experiment" in proc.stderr
    proc = cli("best", "--name", "nope", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "no experiment named 'nope'" in proc.stderr


def test_unopenable_storage_is_one_line(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"garbage" * 1000)
    proc = cli("list", "--storage", f"sqlite:///{junk}", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "cannot be opened" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_password_never_printed(tmp_path):
    proc = cli("list", "--storage", "postgresql://bob:s3cret-pw@127.0.0.1:1/db", cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert "s3cret-pw" not in proc.stderr + proc.stdout and "***" in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("example,metric", [("digits.py", "accuracy"), ("numpy_logistic.py", "val_loss")])
def test_examples_run_as_the_readme_shows(tmp_path, example, metric):
    pytest.importorskip("torch") if example == "digits.py" else None
    out = cli("run", str(ROOT / "examples" / example), "--no-progress", cwd=tmp_path)
    assert f"{metric} = " in out.stdout and "schedule of the best member" in out.stdout
    best = json.loads(cli("best", "--json", cwd=tmp_path).stdout)
    if metric == "accuracy":
        assert best["score"] >= 0.9 and best["step"] == 40
    else:
        assert best["score"] < 0.3 and best["step"] == 30


def test_lineage_text_shows_each_exploit_old_and_new(finished):
    lineage = json.loads(cli("lineage", "--json", cwd=finished).stdout)
    text = cli("lineage", cwd=finished).stdout
    assert f"{len(lineage)} exploits" in text
    assert text.count("->") >= len(lineage)


def test_lineage_rows_list_only_changed_keys_nested_by_dots():
    from poptrain.cli.tables import lineage_rows

    rows = lineage_rows([dict(step=8, member=2, donor=5, donor_step=8,
                              old_config={"lr": 0.1, "opt": {"momentum": 0.9, "nesterov": True}},
                              new_config={"lr": 0.123456789, "opt": {"momentum": 0.9, "nesterov": False}})])
    assert rows == [["8", "2", "5 @ 8", "lr: 0.1 -> 0.1235\nopt.nesterov: true -> false"]]
