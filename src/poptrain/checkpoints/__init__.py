"""Checkpoints: pickle-free serialization and a content-hashed fsspec store.

Example:
    >>> from poptrain.checkpoints import CheckpointStore
    >>> store = CheckpointStore("memory://poptrain-init-doc")
    >>> ref = store.save({"lr": 0.01}, experiment="demo", member=0, step=5)
    >>> store.load(ref)
    {'lr': 0.01}
"""

from poptrain.checkpoints.serialize import dumps, loads
from poptrain.checkpoints.store import CheckpointRef, CheckpointStore

__all__ = ["CheckpointRef", "CheckpointStore", "dumps", "loads"]
