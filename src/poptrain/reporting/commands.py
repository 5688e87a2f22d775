"""The reporting commands behind ``poptrain report``, ``dashboard`` and ``replay``.

Each takes the parsed arguments, prints what the user needs, returns an exit
code, and raises a ``PoptrainError`` (printed as one line by the CLI) for
anything the user can fix: a storage that cannot be opened, an unknown or
empty experiment, a port in use.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, TextIO

from poptrain.errors import ConfigError, StorageError


def _sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL, or None for in-memory and other databases."""
    if not url.startswith("sqlite:"):
        return None
    rest = url.split(":", 1)[1]
    if not rest.startswith("///"):
        return None
    path = rest[3:].split("?", 1)[0]
    if path in ("", ":memory:"):
        return None
    return Path(path)


def open_existing_storage(storage_url: str) -> Any:
    """Open a storage for reading; StorageError (one line) if it does not exist or cannot be opened.

    A missing SQLite file is reported rather than created: reading a report
    from a mistyped path should not leave an empty database behind.
    """
    from poptrain.storage import mask_url, open_storage

    if not isinstance(storage_url, str) or not storage_url:
        raise StorageError(f"a storage URL is needed, e.g. sqlite:///poptrain.db; got {storage_url!r}")
    path = _sqlite_path(storage_url)
    if path is not None and not path.exists():
        raise StorageError(f"storage {mask_url(storage_url)} does not exist (no file {str(path)!r}); "
                           f"check --storage, or start the run first")
    try:
        return open_storage(storage_url)
    except StorageError:
        raise
    except Exception as exc:  # a driver's own error (bad URL, unreachable server) as one line
        raise StorageError(f"storage {mask_url(storage_url)} cannot be opened: "
                           f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None


def load(storage_url: str, name: str | None) -> Any:
    """The experiment's result from an existing storage."""
    from poptrain.results import load_result

    return load_result(open_existing_storage(storage_url), name)


def report_command(storage_url: str, name: str | None, out: str | Path = "report.html",
                   png_dir: str | Path | None = None, *, stream: TextIO | None = None) -> int:
    """``poptrain report``: write the HTML report to ``out`` (and PNGs to ``png_dir``)."""
    from poptrain.reporting.report import write_report
    from poptrain.storage import mask_url

    stream = stream or sys.stdout
    started = time.perf_counter()
    result = load(storage_url, name)
    path = write_report(result, out, storage_label=mask_url(storage_url))
    size = path.stat().st_size
    print(f"wrote {path} ({size / 1e6:.1f} MB, {time.perf_counter() - started:.1f} s)", file=stream)
    if png_dir is not None:
        from poptrain.reporting.png import write_pngs

        for p in write_pngs(result, png_dir):
            print(f"wrote {p}", file=stream)
    return 0


def dashboard_command(storage_url: str, name: str | None, host: str = "127.0.0.1", port: int = 8765, *,
                      poll_s: float = 2.0, stream: TextIO | None = None) -> int:
    """``poptrain dashboard``: serve the live page until interrupted (Ctrl-C)."""
    from poptrain.reporting.dashboard import LOOPBACK_HOSTS, mask, serve_dashboard

    stream = stream or sys.stdout
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise ConfigError(f"The '--port' option must be an integer from 0 to 65535; got {port!r}.")
    dash = serve_dashboard(storage_url, name, host=host, port=port, poll_s=poll_s, background=False)
    print(f"poptrain dashboard over {mask(storage_url)}: {dash.url}  (Ctrl-C stops it)", file=stream)
    first = dash.source.build()
    if not first.get("ok"):
        print(f"note: {first['message']}; the page will show the experiment once it has trained", file=stream)
    if host not in LOOPBACK_HOSTS:
        print(f"note: listening on {host}: anyone who can reach this machine can read the page", file=stream)
    stream.flush()
    try:
        dash.serve_forever()
    except KeyboardInterrupt:
        print("dashboard stopped", file=stream)
    finally:
        dash.close()
    return 0


def replay_command(storage_url: str, name: str | None, file: str | None = None, *,
                   schedule_path: str | None = None, steps: int | None = None,
                   stream: TextIO | None = None) -> int:
    """``poptrain replay``: train one fresh member along the best schedule and compare with the PBT best.

    Args:
        file: the experiment's Python file (a module-level ``experiment``);
            by default the trainable recorded in storage is imported.
        schedule_path: follow this schedule file instead of the stored best one.
        steps: train this many steps (default: the schedule's length).
    """
    from poptrain.reporting.replay import replay
    from poptrain.reporting.schedule import Schedule

    stream = stream or sys.stdout
    result = load(storage_url, name)
    schedule = Schedule.load(schedule_path) if schedule_path else Schedule.from_result(result)
    trainable = _trainable(result, file)
    spec = result.experiment
    outcome = replay(trainable, schedule, metric=spec.get("metric"), mode=spec.get("mode"), steps=steps)
    best = result.best or {}
    metric = outcome.metric
    print(f"replayed schedule ({len(schedule)} segments, {outcome.steps} steps): "
          f"{metric} = {outcome.score:.6g}", file=stream)
    if best:
        print(f"PBT best (member {best.get('member')}, step {best.get('step')}): "
              f"{metric} = {float(best['score']):.6g}", file=stream)
        rel = outcome.relative_difference
        if rel is not None:
            print(f"difference: {outcome.score - float(best['score']):+.6g} ({100 * rel:.2f}%)", file=stream)
    return 0


def _trainable(result: Any, file: str | None) -> Any:
    from poptrain.trainable import load_file, resolve

    if file:
        module = load_file(file)
        experiment = getattr(module, "experiment", None)
        if experiment is None or not hasattr(experiment, "trainable"):
            raise ConfigError(f"{file} defines no module-level `experiment` with a trainable")
        return experiment.trainable
    ref = result.experiment.get("trainable")
    if not ref:
        raise ConfigError("the stored experiment names no trainable; pass the experiment's file with --file")
    return resolve(ref)
