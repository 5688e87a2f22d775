"""Optional dependencies fail late, with the pip command to run."""

from __future__ import annotations

import importlib
from types import ModuleType

_EXTRA_OF = {
    "torch": "torch",
    "sklearn": "pb2",
    "scipy": "pb2",
    "plotly": "report",
    "psycopg": "postgres",
    "ray": "ray",
    "mlflow": "mlflow",
    "tensorboard": "tensorboard",
}


def require(module: str, *, feature: str) -> ModuleType:
    """Import ``module`` or raise ImportError naming ``feature`` and the pip command.

    Example:
        >>> np = require("numpy", feature="the core")
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra = _EXTRA_OF.get(top)
        hint = f"pip install 'poptrain[{extra}]'" if extra else f"pip install {top}"
        if top == "torch":
            hint = "pip install torch==2.13.0  (CPU wheel; or any torch build you prefer)"
        raise ImportError(f"{feature} needs the '{top}' package, which is not installed: {hint}") from exc
