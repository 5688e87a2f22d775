"""The function-style trainable: a generator that yields one step's metrics at a time.

The class API (``__init__/step/state_dict/load_state_dict``) is what workers
call; :func:`function_trainable` builds such a class around a generator function so
that a training loop can stay a loop::

    @poptrain.function_trainable
    def train(config, ctx):
        model = Net()
        opt = torch.optim.SGD(model.parameters(), lr=config["lr"])
        ctx.track(model=model, opt=opt)        # saved, and restored before training goes on
        while True:
            for g in opt.param_groups:         # ctx.config is the live config (explore changes it)
                g["lr"] = ctx.config["lr"]
            yield {"accuracy": train_one_epoch(model, opt)}

Everything that must survive an exploit or a restart goes through
``ctx.track``: objects with ``state_dict()``/``load_state_dict()`` (torch
modules and optimizers) or plain dicts, which are saved and updated in place.
A restored member's tracked objects are loaded the moment ``track`` is
called, before the generator trains, and the new config is already in
``ctx.config``: restore first, then the config, as for the class API.
"""

from __future__ import annotations

import copy
import functools
import inspect
from typing import Any, Callable, Iterator, Mapping

from poptrain.errors import ConfigError, TrainableError


class Context:
    """What the generator receives besides its first config."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config: dict[str, Any] = dict(config)
        self._tracked: dict[str, Any] = {}
        self._pending: dict[str, Any] | None = None

    def track(self, **objects: Any) -> None:
        """Register what a checkpoint holds; a restored member's state is loaded into it now."""
        for name, obj in objects.items():
            if not (isinstance(obj, dict) or (callable(getattr(obj, "state_dict", None))
                                             and callable(getattr(obj, "load_state_dict", None)))):
                raise ConfigError(f"ctx.track({name}=...) needs a dict or an object with state_dict() and "
                                  f"load_state_dict(); got {type(obj).__name__}")
            self._tracked[name] = obj
            if self._pending is not None and name in self._pending:
                _load(obj, self._pending[name])

    def state_dict(self) -> dict[str, Any]:
        return {name: (copy.deepcopy(obj) if isinstance(obj, dict) else obj.state_dict())
                for name, obj in self._tracked.items()}


def _load(obj: Any, state: Any) -> None:
    if isinstance(obj, dict):
        obj.clear()
        obj.update(copy.deepcopy(state))
    else:
        obj.load_state_dict(state)


def function_trainable(fn: Callable[[dict[str, Any], Context], Iterator[Mapping[str, float]]]) -> type:
    """A trainable class around the generator function ``fn(config, ctx)``.

    Example:
        >>> @function_trainable
        ... def count(config, ctx):
        ...     state = {"n": 0}
        ...     ctx.track(state=state)
        ...     while True:
        ...         state["n"] += ctx.config["by"]
        ...         yield {"n": state["n"]}
        >>> member = count({"by": 2}); member.step(), member.step()
        ({'n': 2}, {'n': 4})
        >>> other = count({"by": 10}); other.load_state_dict(member.state_dict()); other.step()
        {'n': 14}
    """
    if not inspect.isgeneratorfunction(fn):
        raise ConfigError(f"@function_trainable needs a generator function (one that yields metrics); {fn.__qualname__} is not")

    class FunctionTrainable:
        def __init__(self, config: Mapping[str, Any]) -> None:
            self.ctx = Context(config)
            self._gen: Iterator[Mapping[str, float]] | None = None

        def apply_config(self, config: Mapping[str, Any]) -> None:
            self.ctx.config.clear()
            self.ctx.config.update(config)

        def load_state_dict(self, state: Mapping[str, Any]) -> None:
            if self._gen is not None:  # already running: load into the tracked objects now
                for name, obj in self.ctx._tracked.items():
                    if name in state:
                        _load(obj, state[name])
            else:
                self.ctx._pending = dict(state)

        def state_dict(self) -> dict[str, Any]:
            return self.ctx.state_dict()

        def step(self) -> Mapping[str, float]:
            if self._gen is None:
                self._gen = fn(dict(self.ctx.config), self.ctx)
            try:
                return next(self._gen)
            except StopIteration:
                raise TrainableError(f"{fn.__qualname__} returned instead of yielding the next step's metrics") from None

    FunctionTrainable.__name__ = FunctionTrainable.__qualname__ = fn.__name__
    FunctionTrainable.__module__ = fn.__module__
    FunctionTrainable.__doc__ = fn.__doc__
    functools.update_wrapper(FunctionTrainable.step, fn, assigned=("__doc__",), updated=())
    return FunctionTrainable
