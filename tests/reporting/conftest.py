"""Fixtures for the reporting tests: real finished runs on real SQLite files, and a browser."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reporting_helpers import EXAMPLES, chromium_path


def _run_example(tmp: Path, file: str, **overrides):
    import poptrain as pt
    from poptrain.trainable import load_file

    experiment = load_file(str(EXAMPLES / file)).experiment
    for key, value in overrides.items():
        setattr(experiment, key, value)
    url = f"sqlite:///{tmp}/runs.db"
    result = pt.run(experiment, storage=url, checkpoints=str(tmp / "ck"), workers=1, executor="inline")
    return url, result


@pytest.fixture(scope="session")
def quadratic_run(tmp_path_factory):
    """``(storage_url, result)`` of the finished quadratic example (the PBT paper's toy problem)."""
    return _run_example(tmp_path_factory.mktemp("quadratic"), "quadratic.py")


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """``(storage_url, result)`` of the digits example, shortened to 12 epochs to keep the suite quick."""
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    return _run_example(tmp_path_factory.mktemp("digits"), "digits.py", budget=12)


@pytest.fixture
def synthetic():
    from poptrain.reporting.synthetic import synthetic_result

    return synthetic_result(members=8, steps=40, interval=5, seed=1)


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason}; CI must run the browser tests (scripts/test.sh installs Chromium)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser():
    """A headless Chromium driven by Playwright (Debian's Chromium, not a downloaded build)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the 'playwright' package is not installed (pip install playwright)")
    path = chromium_path()
    if path is None:
        _missing("Chromium is not installed (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        yield b
        b.close()


@pytest.fixture
def artifacts(request) -> Path:
    """A folder for files a test leaves for people to look at (screenshots).

    ``$POPTRAIN_TEST_ARTIFACTS/<test>`` when that variable is set, else
    ``tests/reporting/artifacts/<test>`` (git-ignored).
    """
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in request.node.name)
    base = Path(os.environ.get("POPTRAIN_TEST_ARTIFACTS") or Path(__file__).parent / "artifacts")
    path = base / name
    path.mkdir(parents=True, exist_ok=True)
    return path
