"""The vectorized engine: the whole population as one batched model on one device.

For small and medium models, one process per member spends most of the
machine on Python and framework overhead. Here the members' parameters are
stacked along a leading dimension and trained together (``torch.func``:
``stack_module_state``, ``functional_call``, ``vmap``): one batched forward and
backward pass per batch for the whole population, per-member optimizer
hyperparameters as ``[N]`` tensors, and exploit as an in-memory copy of a slice.
Needs the ``torch`` extra.
"""

from poptrain._optional import require

require("torch", feature="poptrain.vectorized")

from poptrain.vectorized.engine import train_population  # noqa: E402
from poptrain.vectorized.optim import SGD, Adam, AdamW, StackedOptimizer  # noqa: E402
from poptrain.vectorized.population import Population  # noqa: E402
from poptrain.vectorized.recorder import MemoryRecorder, PopulationResult, Recorder  # noqa: E402

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "MemoryRecorder",
    "Population",
    "PopulationResult",
    "Recorder",
    "StackedOptimizer",
    "train_population",
]
