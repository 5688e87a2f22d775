"""PNG export and the notebook helpers (summary HTML, plot functions)."""

from __future__ import annotations

import pytest

from poptrain.reporting import plot_diversity, plot_lineage, plot_schedules, plot_scores, summary_html
from poptrain.reporting.png import write_pngs

PNG = b"\x89PNG\r\n\x1a\n"
NAMES = ["scores.png", "schedules.png", "lineage.png", "diversity.png"]


def test_matplotlib_pngs(synthetic, tmp_path):
    pytest.importorskip("matplotlib")
    paths = write_pngs(synthetic, tmp_path, engine="matplotlib")
    assert [p.name for p in paths] == NAMES
    assert all(p.read_bytes().startswith(PNG) and p.stat().st_size > 5000 for p in paths)


def test_kaleido_pngs_through_the_cli(quadratic_run, tmp_path, capsys):
    pytest.importorskip("kaleido")
    from reporting_helpers import chromium_path

    if chromium_path() is None:
        pytest.skip("kaleido needs a Chromium; none is installed")
    from poptrain.cli.main import main as cli

    url, _ = quadratic_run
    assert cli(["report", "--storage", url, "--out", str(tmp_path / "r.html"), "--png", str(tmp_path / "png")]) == 0
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == sorted(NAMES)
    assert all(p.read_bytes().startswith(PNG) for p in (tmp_path / "png").iterdir())


def test_an_unknown_engine_is_refused(synthetic, tmp_path):
    from poptrain.errors import ConfigError

    with pytest.raises(ConfigError, match="'engine' argument of write_pngs"):
        write_pngs(synthetic, tmp_path, engine="svg")


def test_plot_functions_return_plotly_figures(quadratic_run):
    go = pytest.importorskip("plotly.graph_objects")
    result = quadratic_run[1]
    for fn in (plot_scores, plot_schedules, plot_lineage, plot_diversity):
        fig = fn(result)
        assert isinstance(fig, go.Figure) and len(fig.data) > 0
    names = [t.name for t in plot_scores(result).data]
    assert "exploit" in names and any(n.startswith("best") for n in names)


def test_result_renders_a_summary_in_notebooks(quadratic_run):
    result = quadratic_run[1]
    html = result._repr_html_()
    assert html == summary_html(result)
    assert "quadratic" in html and "best schedule" in html and 'class="best"' in html
    assert "exploits" in html


def test_summary_of_an_empty_experiment_says_so():
    html = summary_html({"experiment": {"name": "fresh"}, "members": [], "history": [], "segments": []})
    assert "has not trained any step yet" in html
