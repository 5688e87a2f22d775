"""Everything a user looks at, read from storage: plots, the HTML report, the
live dashboard, schedule export, replay and tracker callbacks.

Heavy pieces (plotly, the HTTP server, trackers) load on first use, so that
``Result._repr_html_`` and the CLI stay quick.

Example:
    >>> from poptrain.reporting import Schedule
    >>> s = Schedule.from_json({"format": "poptrain.schedule/1",
    ...     "segments": [{"start_step": 0, "end_step": 4, "config": {"lr": 0.1}},
    ...                  {"start_step": 4, "end_step": 8, "config": {"lr": 0.05}}]})
    >>> s.at(3), s.at(4)
    ({'lr': 0.1}, {'lr': 0.05})
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "summary_html": "poptrain.reporting.summary",
    "plot_scores": "poptrain.reporting.plots",
    "plot_schedules": "poptrain.reporting.plots",
    "plot_lineage": "poptrain.reporting.plots",
    "plot_diversity": "poptrain.reporting.plots",
    "build_report": "poptrain.reporting.report",
    "write_report": "poptrain.reporting.report",
    "read_report_data": "poptrain.reporting.report",
    "Schedule": "poptrain.reporting.schedule",
    "write_schedule": "poptrain.reporting.schedule",
    "replay": "poptrain.reporting.replay",
    "ReplayOutcome": "poptrain.reporting.replay",
    "Tracker": "poptrain.reporting.trackers",
    "Trackers": "poptrain.reporting.trackers",
    "TensorBoardTracker": "poptrain.reporting.trackers",
    "MLflowTracker": "poptrain.reporting.trackers",
    "serve_dashboard": "poptrain.reporting.dashboard",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'poptrain.reporting' has no attribute {name!r}")
