"""Renew a lease in the background while the member trains."""

from __future__ import annotations

import logging
import threading

from poptrain.storage import Lease, Storage

log = logging.getLogger("poptrain.worker")


class Heartbeat:
    """Extends ``lease`` every ``lease_s / 3`` seconds until stopped; ``lost`` tells if it was taken over."""

    def __init__(self, storage: Storage, lease: Lease, *, lease_s: float) -> None:
        self._storage, self._lease, self._lease_s = storage, lease, lease_s
        self._stop = threading.Event()
        self.lost = False
        self._thread = threading.Thread(target=self._run, name=f"poptrain-heartbeat-{lease.member_id}", daemon=True)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._lease_s / 3):
            try:
                if not self._storage.heartbeat(self._lease, lease_s=self._lease_s):
                    self.lost = True
                    return
            except Exception as exc:  # noqa: BLE001 - a database blip must not kill training; the lease may lapse
                log.warning("heartbeat for member %s failed: %s", self._lease.member_id, exc)
