"""Background threads of a worker: lease renewal and checkpoint deletion."""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

from poptrain.storage import Lease, Storage

log = logging.getLogger("poptrain.worker")


class Heartbeat:
    """One thread per worker that renews the lease it is told to watch, every ``lease_s / 3`` seconds.

    ``lost(lease)`` tells whether a renewal found the lease taken over.
    """

    def __init__(self, storage: Storage, *, lease_s: float) -> None:
        self._storage, self._lease_s = storage, lease_s
        self._lock = threading.Lock()
        self._lease: Lease | None = None
        self._lost: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="poptrain-heartbeat", daemon=True)
        self._thread.start()

    def watch(self, lease: Lease | None) -> None:
        with self._lock:
            self._lease = lease

    def lost(self, lease: Lease) -> bool:
        with self._lock:
            return lease.token in self._lost

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._lease_s / 3):
            with self._lock:
                lease = self._lease
            if lease is None:
                continue
            try:
                if not self._storage.heartbeat(lease, lease_s=self._lease_s):
                    with self._lock:
                        self._lost.add(lease.token)
            except Exception as exc:  # noqa: BLE001 - a database blip must not kill training; the lease may lapse
                log.warning("heartbeat for member %s failed: %s", lease.member_id, exc)


class Deleter:
    """Deletes checkpoint files off the training path (a delete can take milliseconds on some disks)."""

    def __init__(self, checkpoints: Any) -> None:
        self._checkpoints = checkpoints
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="poptrain-deleter", daemon=True)
        self._thread.start()

    def delete(self, keys: list[str]) -> None:
        for k in keys:
            self._queue.put(k)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (key := self._queue.get()) is not None:
            try:
                self._checkpoints.delete(key)
            except Exception as exc:  # noqa: BLE001 - an undeleted file is garbage, not an error
                log.warning("could not delete checkpoint %s: %s", key, exc)
