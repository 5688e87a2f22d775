"""The user's trainable: a class with ``__init__(config)``, ``step()``, ``state_dict()``, ``load_state_dict()``.

The names follow PyTorch. An optional ``apply_config(config)`` changes
hyperparameters in place (e.g. an optimizer's ``lr``); exploit always
restores the donor's state **first** and applies the new config **after**,
so hyperparameters saved inside an optimizer's state cannot overwrite the
explored ones.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import math
import os
import sys
from typing import Any, Mapping, Protocol, runtime_checkable

from poptrain.errors import ConfigError, TrainableError


@runtime_checkable
class Trainable(Protocol):
    """What poptrain calls on a member. ``apply_config`` is optional.

    Example:
        >>> class Counter:
        ...     def __init__(self, config): self.n, self.lr = 0, config["lr"]
        ...     def step(self): self.n += 1; return {"score": self.n * self.lr}
        ...     def state_dict(self): return {"n": self.n}
        ...     def load_state_dict(self, state): self.n = state["n"]
        >>> isinstance(Counter({"lr": 1.0}), Trainable)
        True
    """

    def step(self) -> Mapping[str, float]: ...

    def state_dict(self) -> Any: ...

    def load_state_dict(self, state: Any) -> None: ...


def check_trainable_class(cls: Any) -> None:
    """ConfigError naming what is missing when ``cls`` cannot be a trainable."""
    if not inspect.isclass(cls):
        raise ConfigError(f"The 'trainable' of an experiment must be a class; got {cls!r} instead.")
    missing = [m for m in ("step", "state_dict", "load_state_dict") if not callable(getattr(cls, m, None))]
    if missing:
        raise ConfigError(f"trainable {cls.__qualname__} lacks the method(s) {', '.join(missing)}")


def build(cls: Any, config: Mapping[str, Any], state: Any = None) -> Any:
    """A member ready to train: constructed, state restored, then config applied."""
    obj = cls(dict(config))
    if state is not None:
        obj.load_state_dict(state)
        apply_config(obj, config)
    return obj


def apply_config(obj: Any, config: Mapping[str, Any]) -> None:
    """Give a restored member its new config: ``obj.apply_config``, or else its optimizers' matching keys.

    Without ``apply_config``, an optimizer restored from the donor's state
    would keep the donor's ``lr`` (the explored one would be silently lost),
    so every optimizer-like attribute (one with ``param_groups``) gets the
    config's top-level values for the keys its param groups already have.
    """
    fn = getattr(obj, "apply_config", None)
    if callable(fn):
        fn(dict(config))
        return
    for value in vars(obj).values() if hasattr(obj, "__dict__") else ():
        groups = getattr(value, "param_groups", None)
        if not isinstance(groups, list) or not callable(getattr(value, "state_dict", None)):
            continue
        for group in groups:
            if isinstance(group, dict):
                for key in group.keys() & config.keys() - {"params"}:
                    group[key] = config[key]


def check_metrics(metrics: Any, metric: str, *, member: int, step: int) -> dict[str, float]:
    """The metrics of one step as a dict of floats; TrainableError if the main metric is absent."""
    if not isinstance(metrics, Mapping):
        raise TrainableError(f"step() of member {member} at step {step} returned {type(metrics).__name__}, expected a dict of metrics")
    out: dict[str, float] = {}
    for k, v in metrics.items():
        try:
            out[str(k)] = float(v)
        except (TypeError, ValueError):
            raise TrainableError(f"step() of member {member} at step {step}: metric {k!r} = {v!r} is not a number") from None
    if metric not in out:
        raise TrainableError(
            f"step() of member {member} at step {step} returned metrics {sorted(out)} without the experiment's metric {metric!r}"
        )
    return out


def is_usable(x: float) -> bool:
    return isinstance(x, float) and math.isfinite(x)


# -- finding the trainable on every host ---------------------------------
def reference(obj: Any) -> str:
    """``module:qualname`` when importable, else ``/abs/file.py:qualname``."""
    module = getattr(obj, "__module__", None)
    qual = getattr(obj, "__qualname__", None)
    if not module or not qual:
        raise ConfigError(f"{obj!r} has no importable name")
    mod = sys.modules.get(module)
    path = getattr(mod, "__file__", None)
    if module in ("__main__", "__mp_main__") or module.startswith("poptrain_user_"):
        if not path:
            raise ConfigError(f"{qual} is defined in an interactive session; define it in a file to use worker processes")
        return f"{os.path.abspath(path)}:{qual}"
    return f"{module}:{qual}"


def resolve(ref: str) -> Any:
    """The object named by :func:`reference`'s string."""
    target, _, qual = ref.rpartition(":")
    if not target or not qual:
        raise ConfigError(f"trainable reference {ref!r} is not 'module:name' or 'file.py:name'")
    if target.endswith(".py"):
        module = load_file(target)
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise ConfigError(f"trainable {ref!r} cannot be imported here: {exc}") from None
    obj: Any = module
    for part in qual.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"trainable {ref!r}: {target} has no {qual!r}") from None
    return obj


def load_file(path: str) -> Any:
    """Import a Python file as a module once per process (workers and the CLI share it)."""
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise ConfigError(f"{path} does not exist or is not a file")
    name = "poptrain_user_" + "".join(c if c.isalnum() else "_" for c in path)
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{path} cannot be loaded as a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    # Let the file import its neighbours, as `python FILE.py` would.
    sys.path.insert(0, os.path.dirname(path))
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
