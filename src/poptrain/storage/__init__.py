"""The population's shared state on SQLAlchemy (SQLite by default, PostgreSQL for many machines)."""

from poptrain.storage.engine import DEFAULT_URL, mask_url
from poptrain.storage.records import (
    CheckpointRecord,
    ExperimentRecord,
    ExploitOrder,
    IntervalReport,
    Lease,
    MemberRecord,
    Snapshot,
)
from poptrain.storage.store import Storage, open_storage, worker_name

__all__ = [
    "DEFAULT_URL",
    "CheckpointRecord",
    "ExperimentRecord",
    "ExploitOrder",
    "IntervalReport",
    "Lease",
    "MemberRecord",
    "Snapshot",
    "Storage",
    "mask_url",
    "open_storage",
    "worker_name",
]
