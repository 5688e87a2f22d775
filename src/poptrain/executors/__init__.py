"""Executors start workers; they hold no PBT state."""

from __future__ import annotations

from typing import Any

from poptrain.errors import ConfigError


def get_executor(name: str, **options: Any) -> Any:
    """The executor called ``name``: ``local`` (processes), ``inline`` (this process) or ``ray``."""
    if name == "local":
        from poptrain.executors.local import LocalExecutor

        return LocalExecutor(**options)
    if name == "inline":
        from poptrain.executors.inline import InlineExecutor

        return InlineExecutor(**options)
    if name == "ray":
        from poptrain.executors.ray import RayExecutor  # type: ignore[import-not-found]

        return RayExecutor(**options)
    raise ConfigError(f"The 'executor' must be one of local, inline, ray; got {name!r} instead.")
