"""poptrain: Population-Based Training.

A population of models trains at once; at ready points weak members copy
the weights and hyperparameters of strong ones (exploit) and then change the
hyperparameters (explore).

Example:
    >>> import poptrain as pt
    >>> from poptrain.space import Float
    >>> pt.PBT(interval=4).interval
    4
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# Imported on first use: `poptrain --help` and worker start-up stay fast.
_LAZY = {
    "Experiment": ("poptrain.experiment", "Experiment"),
    "run": ("poptrain.driver", "run"),
    "load_result": ("poptrain.results", "load_result"),
    "Result": ("poptrain.results", "Result"),
    "function_trainable": ("poptrain.function", "function_trainable"),
    "PBT": ("poptrain.algorithms", "PBT"),
    "Space": ("poptrain.space", "Space"),
    "Float": ("poptrain.space", "Float"),
    "Int": ("poptrain.space", "Int"),
    "Choice": ("poptrain.space", "Choice"),
    "Ordered": ("poptrain.space", "Ordered"),
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'poptrain' has no attribute {name!r}")
