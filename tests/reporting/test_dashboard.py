"""The live dashboard: its JSON endpoint, its errors, and a real browser watching a real run."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request

import pytest

import poptrain as pt

from poptrain.cli.main import main as cli
from poptrain.errors import ConfigError, StorageError
from poptrain.reporting.dashboard import DataSource, mask, page_html, serve_dashboard


def _get(url, host=None):
    req = urllib.request.Request(url, headers={"Host": host} if host else {})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, r.headers.get("Content-Type"), r.read()


def test_endpoints_over_a_finished_run(quadratic_run):
    url, result = quadratic_run
    with serve_dashboard(url, port=0) as dash:
        assert dash.host == "127.0.0.1"
        status, ctype, body = _get(dash.url)
        assert status == 200 and ctype.startswith("text/html")
        page = body.decode()
        assert 'src="/plotly.js"' in page and "https://" not in page
        status, ctype, body = _get(dash.url + "api/data")
        data = json.loads(body)
        assert data["ok"] and data["experiment"] == "quadratic" and data["status"] == "done"
        assert data["counts"] == {"members": 2, "exploits": len(result.lineage), "steps": 400, "budget": 400}
        assert set(data["figures"]) == {"scores", "schedules", "lineage", "diversity"}
        assert data["best"]["member"] == result.best["member"]
        status, ctype, body = _get(dash.url + "plotly.js")
        assert status == 200 and b"plotly" in body[:2000].lower()
        assert _get(dash.url + "healthz")[2] == b"ok\n"
        with pytest.raises(urllib.error.HTTPError) as err:
            _get(dash.url + "nothing")
        assert err.value.code == 404
        # A page on another site that rebinds its name to 127.0.0.1 is refused.
        with pytest.raises(urllib.error.HTTPError) as err:
            _get(dash.url + "api/data", host="attacker.example:8765")
        assert err.value.code == 403


def test_an_unknown_experiment_is_shown_plainly(quadratic_run):
    url, _ = quadratic_run
    with serve_dashboard(url, "nope", port=0) as dash:
        data = json.loads(_get(dash.url + "api/data")[2])
    assert data["ok"] is False and "no experiment named 'nope'" in data["message"]


def test_a_missing_storage_is_one_line(tmp_path, capsys):
    with pytest.raises(StorageError, match="does not exist"):
        serve_dashboard(f"sqlite:///{tmp_path}/none.db", port=0)
    assert cli(["dashboard", "--storage", f"sqlite:///{tmp_path}/none.db", "--port", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_a_port_in_use_is_named(quadratic_run, capsys):
    url, _ = quadratic_run
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ConfigError, match=f"port {port} on 127.0.0.1 is already in use"):
            serve_dashboard(url, port=port)
        assert cli(["dashboard", "--storage", url, "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"poptrain dashboard: port {port} on 127.0.0.1 is already in use; "
                   f"pick another with --port (or --port 0 for any free port)")


def test_passwords_are_masked_everywhere_the_url_is_shown():
    label = mask("postgresql://bob:hunter2@db:5432/pbt")
    assert "hunter2" not in label and "bob:***@db" in label
    assert "hunter2" not in page_html(experiment="x", storage_label=label, poll_s=1)

    def fail():
        from poptrain.errors import StorageError

        raise StorageError(f"storage {label} cannot be opened")

    payload = json.loads(DataSource(fail, label=label).payload())
    assert payload["ok"] is False and "hunter2" not in json.dumps(payload)


def test_the_payload_is_cached_between_polls(synthetic):
    calls = []

    def load():
        calls.append(1)
        return synthetic

    src = DataSource(load, label="memory", min_interval_s=60)
    first = src.payload()
    assert src.payload() is first and len(calls) == 1


LIVE_EXPERIMENT = '''
import time

import poptrain as pt
from poptrain.algorithms import PBT, Truncation
from poptrain.space import Float


class Slow:
    """Climbs by its rate; a short sleep per step lets the browser watch the run unfold."""

    def __init__(self, config):
        self.x = 0.0
        self.rate = config["rate"]

    def apply_config(self, config):
        self.rate = config["rate"]

    def step(self):
        time.sleep(0.04)
        self.x += self.rate
        return {"score": self.x}

    def state_dict(self):
        return {"x": self.x}

    def load_state_dict(self, state):
        self.x = float(state["x"])


experiment = pt.Experiment(
    name="live", trainable=Slow, space={"rate": Float(0.01, 1.0, log=True)}, metric="score",
    strategy=PBT(interval=5, selection=Truncation(0.25)), population=4, budget=80, seed=3,
)
'''


@pytest.mark.browser
@pytest.mark.slow
def test_browser_watches_a_live_run(browser, tmp_path, artifacts):
    (tmp_path / "live.py").write_text(textwrap.dedent(LIVE_EXPERIMENT))
    db = tmp_path / "live.db"
    url = f"sqlite:///{db}"
    run = subprocess.Popen(
        [sys.executable, "-c", "import sys; from poptrain.cli.main import main; sys.exit(main())",
         "run", str(tmp_path / "live.py"), "--storage", url, "--checkpoints", str(tmp_path / "ck"),
         "--workers", "2", "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while not db.exists():
            assert run.poll() is None, run.stdout.read().decode()
            assert time.monotonic() < deadline, "the run never created its storage"
            time.sleep(0.1)
        with serve_dashboard(url, "live", port=0, poll_s=0.5) as dash:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            problems = []
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
                    if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
            page.goto(dash.url)
            page.wait_for_function("Number(document.body.dataset.members) === 4", timeout=60_000)
            steps_seen = int(page.evaluate("document.body.dataset.steps"))
            assert run.poll() is None, "the run ended before the page showed it; make it longer"
            page.wait_for_function("Number(document.body.dataset.exploits) >= 1", timeout=60_000)
            # The page follows the run as it goes, without a reload.
            page.wait_for_function(f"Number(document.body.dataset.steps) > {steps_seen}", timeout=60_000)
            assert run.wait(timeout=120) == 0, run.stdout.read().decode()
            page.wait_for_function("document.body.dataset.status === 'done'", timeout=30_000)
            page.wait_for_timeout(300)
            for name in ("scores", "schedules", "lineage", "diversity"):
                fig = page.locator(f"#fig-{name}")
                assert fig.locator(".main-svg").count() >= 1, f"{name} did not render"
                assert fig.locator(".scatterlayer .trace").count() >= 1, f"{name} has no traces"
            assert page.locator("#members-table tbody tr").count() == 4
            # one row per schedule entry of the best member, as storage has it
            best = pt.load_result(url, "live").best
            assert page.locator("#schedule-table tbody tr").count() == len(best["schedule"])
            status = page.inner_text("#status")
            assert "done" in status and "4 members" in status and "320 / 320 steps" in status
            page.screenshot(path=str(artifacts / "dashboard.png"), full_page=True)
            assert problems == []
            page.close()
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert (artifacts / "dashboard.png").stat().st_size > 10_000


def test_the_dashboard_command_serves_until_interrupted(quadratic_run):
    import signal

    url, _ = quadratic_run
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from poptrain.cli.main import main; sys.exit(main())",
         "dashboard", "--storage", url, "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("poptrain dashboard over sqlite:///") and "http://127.0.0.1:" in line
        page_url = line.split("http://", 1)[1].split()[0]
        assert json.loads(_get("http://" + page_url + "api/data")[2])["ok"]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0 and "dashboard stopped" in out and err == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_an_empty_experiment_is_shown_plainly(tmp_path):
    import poptrain as pt
    from poptrain.trainable import load_file

    from reporting_helpers import EXAMPLES

    exp = load_file(str(EXAMPLES / "quadratic.py")).experiment
    url = f"sqlite:///{tmp_path}/empty.db"
    pt.run(exp, storage=url, checkpoints=str(tmp_path / "ck"), workers=0, executor="inline")
    with serve_dashboard(url, port=0) as dash:
        data = json.loads(_get(dash.url + "api/data")[2])
    assert data["ok"] is False and "'quadratic' has not trained any step yet" in data["message"]


def test_a_failing_read_keeps_the_last_good_payload(synthetic):
    results = [synthetic]

    def load():
        if not results:
            raise RuntimeError("database is locked")
        return results.pop()

    src = DataSource(load, label="memory", min_interval_s=0)
    assert src.build()["ok"]
    stale = src.build()
    assert stale["ok"] and "database is locked" in stale["warning"]
    fresh = DataSource(load, label="memory", min_interval_s=0).build()
    assert fresh["ok"] is False and "database is locked" in fresh["message"]


def test_polls_without_news_get_a_short_answer(quadratic_run):
    url, _ = quadratic_run
    with serve_dashboard(url, port=0) as dash:
        full = json.loads(_get(dash.url + "api/data")[2])
        short = json.loads(_get(dash.url + "api/data?since=" + full["version"])[2])
        other = json.loads(_get(dash.url + "api/data?since=old")[2])
    assert short == {"ok": True, "unchanged": True, "version": full["version"]}
    assert other["version"] == full["version"] and "figures" in other
