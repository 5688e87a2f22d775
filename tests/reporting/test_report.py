"""The HTML report, generated from real finished runs and parsed back."""

from __future__ import annotations

import json
import re
import time

import pytest

from poptrain.cli.main import main as cli
from poptrain.errors import StorageError
from poptrain.reporting.commands import report_command
from poptrain.reporting.data import NothingToReport
from poptrain.reporting.report import build_report, read_report_data


def _lineage_json(url, capsys):
    capsys.readouterr()
    assert cli(["lineage", "--storage", url, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _check_report(html: str, result, url, capsys):
    data = read_report_data(html)
    assert data["format"] == "poptrain.report-data/1"
    assert data["experiment"]["name"] == result.name
    # Every member, every segment and every trained step is in the file.
    assert sorted(m["member"] for m in data["members"]) == sorted(m["member"] for m in result.members)
    assert len(data["segments"]) == len(result.segments)
    hist = data["history"]
    assert len(hist["step"]) == len(result.history)
    metric = result.experiment["metric"]
    got = sorted(zip(hist["member"], hist["segment"], hist["step"], hist["metrics"][metric]))
    want = sorted((h["member"], h["segment"], h["step"], h["metrics"][metric]) for h in result.history)
    assert got == want
    # The lineage edges are those `poptrain lineage --json` prints.
    cli_edges = [(e["member"], e["step"], e["donor"], e["donor_step"]) for e in _lineage_json(url, capsys)]
    report_edges = [(e["member"], e["step"], e["donor"], e["donor_step"]) for e in data["lineage"]]
    assert report_edges == cli_edges and cli_edges
    assert data["best"]["member"] == result.best["member"]
    assert len(data["best"]["schedule"]) == len(result.best["schedule"])
    # Self-contained: plotly.js inline, nothing loaded from elsewhere.
    assert "Plotly.newPlot" in html and "plotly.js" in html.lower()
    assert not re.search(r"<script[^>]+src=", html)
    assert not re.search(r"<link[^>]+href=", html)
    for part in ("fig-scores", "fig-schedules", "fig-lineage", "fig-diversity", "members-table", "schedule-table"):
        assert f'id="{part}"' in html
    return data


def test_report_of_the_quadratic_run(quadratic_run, tmp_path, capsys):
    url, result = quadratic_run
    out = tmp_path / "sub" / "report.html"
    assert report_command(url, None, out) == 0
    assert "wrote" in capsys.readouterr().out
    data = _check_report(out.read_text(encoding="utf-8"), result, url, capsys)
    assert data["diversity"]["ancestors"][0] == 2
    assert data["diversity"]["ancestors"][-1] == 1  # the pair ends up descending from one member


def test_report_of_the_digits_run(digits_run, tmp_path, capsys):
    url, result = digits_run
    out = tmp_path / "digits.html"
    assert cli(["report", "--storage", url, "--out", str(out)]) == 0
    data = _check_report(out.read_text(encoding="utf-8"), result, url, capsys)
    assert set(data["diversity"]["spread"]) == {"lr", "momentum", "weight_decay"}
    assert data["experiment"]["population"] == 8


def test_report_figures_are_valid_plotly(quadratic_run):
    go = pytest.importorskip("plotly.graph_objects")
    html = build_report(quadratic_run[1])
    start = html.index('id="poptrain-figures">') + len('id="poptrain-figures">')
    figures = json.loads(html[start:html.index("</script>", start)])
    assert set(figures) == {"scores", "schedules", "lineage", "diversity"}
    for spec in figures.values():
        go.Figure(spec)  # raises on any property plotly does not know


def test_script_data_cannot_close_its_script_element(synthetic):
    synthetic["experiment"]["name"] = "</script><script>alert(1)</script>"
    html = build_report(synthetic)
    assert "<script>alert(1)" not in html
    assert read_report_data(html)["experiment"]["name"] == "</script><script>alert(1)</script>"


def test_a_large_population_renders_fast_and_small(tmp_path):
    from poptrain.reporting.synthetic import synthetic_result

    result = synthetic_result(members=256, steps=200, interval=10, seed=0)
    started = time.perf_counter()
    text = build_report(result)
    elapsed = time.perf_counter() - started
    assert elapsed < 5.0
    assert len(text.encode("utf-8")) < 20 * 1024 * 1024
    assert len(read_report_data(text)["members"]) == 256


def test_an_unknown_experiment_is_named_plainly(quadratic_run, tmp_path):
    url, _ = quadratic_run
    with pytest.raises(StorageError, match="no experiment named 'nope'.*quadratic"):
        report_command(url, "nope", tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def test_an_empty_experiment_says_so(tmp_path):
    import poptrain as pt
    from poptrain.trainable import load_file

    from reporting_helpers import EXAMPLES

    exp = load_file(str(EXAMPLES / "quadratic.py")).experiment
    url = f"sqlite:///{tmp_path}/empty.db"
    pt.run(exp, storage=url, checkpoints=str(tmp_path / "ck"), workers=0, executor="inline")
    with pytest.raises(NothingToReport, match="'quadratic' has not trained any step yet"):
        report_command(url, None, tmp_path / "r.html")


def test_a_storage_that_cannot_be_opened_is_one_line_and_creates_nothing(tmp_path, capsys):
    missing = tmp_path / "missing.db"
    assert cli(["report", "--storage", f"sqlite:///{missing}", "--out", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "does not exist" in err and "Traceback" not in err
    assert not missing.exists()
    (tmp_path / "junk.db").write_text("this is not a database")
    assert cli(["report", "--storage", f"sqlite:///{tmp_path / 'junk.db'}", "--out", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_passwords_never_reach_the_report(synthetic, monkeypatch, tmp_path):
    import poptrain.reporting.commands as commands

    monkeypatch.setattr(commands, "load", lambda url, name: synthetic)
    out = tmp_path / "r.html"
    commands.report_command("postgresql://bob:hunter2@db.example:5432/pbt", None, out)
    text = out.read_text(encoding="utf-8")
    assert "hunter2" not in text and "bob:***@db.example" in text
