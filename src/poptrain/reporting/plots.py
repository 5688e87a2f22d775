"""Plot functions for notebooks: each returns a ``plotly.graph_objects.Figure``.

Example:
    >>> import poptrain as pt                                        # doctest: +SKIP
    >>> from poptrain.reporting import plot_scores
    >>> plot_scores(pt.load_result("sqlite:///poptrain.db")).show()  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from poptrain._optional import require
from poptrain.reporting import figures
from poptrain.reporting.data import population


def _figure(spec: dict[str, Any]) -> Any:
    go = require("plotly.graph_objects", feature="poptrain's plots")
    return go.Figure(figures.nan_free(spec))


def plot_scores(result: Any) -> Any:
    """Score against step for every member, coloured by ancestor, exploits marked, best line in black."""
    return _figure(figures.scores_figure(population(result)))


def plot_schedules(result: Any) -> Any:
    """Each hyperparameter against step for every member; the best member's schedule in black."""
    return _figure(figures.schedules_figure(population(result)))


def plot_lineage(result: Any) -> Any:
    """The lineage tree: a bar per segment on its member's row, an edge per exploit."""
    return _figure(figures.lineage_figure(population(result)))


def plot_diversity(result: Any) -> Any:
    """Surviving ancestors and hyperparameter spread against step."""
    return _figure(figures.diversity_figure(population(result)))
