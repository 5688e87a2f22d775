"""The vectorized engine: the whole population as one batched model on one device.

For small and medium models, one process per member spends most of the
machine on Python and framework overhead. Here the members' parameters are
stacked along a leading dimension and trained together (``torch.func``:
``stack_module_state``, ``functional_call``, ``vmap``): one batched forward and
backward pass per batch for the whole population, per-member optimizer
hyperparameters as ``[N]`` tensors, and exploit as an in-memory copy of a slice.
Needs the ``torch`` extra.

What it saves is per-member overhead: processes, storage round trips,
checkpoint files and many tiny kernels. On a CPU the batched step is soon
bound by arithmetic, which it still has to do for every member, so the gain
there is a small factor (``bench/vectorized.py`` measures it); it grows where
one member alone leaves the device mostly idle, as on a GPU
(``bench/vectorized_gpu.py``). On a busy machine one torch thread
(``torch.set_num_threads(1)``) is often faster than several.

Example:
    >>> from poptrain.vectorized import SGD, train_population  # doctest: +SKIP
    >>> result = train_population(model=make_mlp, loss=cross_entropy, train_data=(x, y),
    ...                           space={"lr": Float(1e-3, 1.0, log=True)}, strategy=PBT(interval=4),
    ...                           metric="train_loss", mode="min", population=64, budget=20,
    ...                           optimizer=SGD(momentum=0.9), batch_size=64)  # doctest: +SKIP
"""

from poptrain._optional import require

require("torch", feature="poptrain.vectorized")

from poptrain.vectorized.engine import train_population  # noqa: E402
from poptrain.vectorized.optim import SGD, Adam, AdamW, StackedOptimizer  # noqa: E402
from poptrain.vectorized.population import Population  # noqa: E402
from poptrain.vectorized.recorder import MemoryRecorder, PopulationResult, Recorder  # noqa: E402
from poptrain.vectorized.run import run  # noqa: E402
from poptrain.vectorized.storage_recorder import StorageRecorder  # noqa: E402

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "MemoryRecorder",
    "Population",
    "PopulationResult",
    "Recorder",
    "StackedOptimizer",
    "StorageRecorder",
    "run",
    "train_population",
]
