"""The vectorized engine's records in poptrain storage, the same records the worker path writes.

Everything a worker-path experiment has (members, segments and lineage,
history, checkpoint records, best) is written here too, so ``poptrain
status/best/lineage/history``, the report and the dashboard work unchanged
on a vectorized run. The engine trains all members in lockstep, so each
ready point is recorded like a synchronous generation: every member's
interval at once (``commit_generation``), then that generation's exploits
(``apply_generation``).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from poptrain.checkpoints import CheckpointRef
from poptrain.storage import CheckpointRecord, ExploitOrder, Storage


class StorageRecorder:
    """A :class:`~poptrain.vectorized.recorder.Recorder` writing to an experiment already created in ``storage``."""

    def __init__(self, storage: Storage, experiment_id: int, *, metric: str, mode: str, budget: int,
                 scores_kept: int = 10) -> None:
        self.storage, self.experiment_id = storage, experiment_id
        self.metric, self.mode, self.budget, self.scores_kept = metric, mode, budget, scores_kept
        self._rows: dict[int, list[tuple[int, dict[str, float]]]] = {}
        self._scores: dict[int, list[float]] = {}
        self._orders: dict[int, ExploitOrder] = {}

    def start(self, configs: Sequence[Mapping[str, Any]], *, step: int) -> None:
        members = self.storage.members(self.experiment_id)
        self._scores = {m.member_id: list(m.scores) for m in members}
        self._rows = {i: [] for i in range(len(configs))}

    def record_steps(self, step: int, metrics: Sequence[Mapping[str, float]]) -> None:
        for i, m in enumerate(metrics):
            self._rows.setdefault(i, []).append((step, dict(m)))
            self._scores[i] = (self._scores.get(i, []) + [float(m[self.metric])])[-self.scores_kept:]

    def record_exploit(self, member: int, donor: int, step: int, old_config: Mapping[str, Any],
                       new_config: Mapping[str, Any]) -> None:
        self._orders[member] = ExploitOrder(donor, dict(new_config))

    def record_checkpoint(self, step: int, ref: CheckpointRef) -> None:
        done = step >= self.budget
        self.storage.commit_generation(
            self.experiment_id, step, self._rows, self._scores, CheckpointRecord(ref.key, ref.sha256, ref.size),
            done=done, mode=self.mode,
        )
        if not done:
            # Donors are read as committed just above: their scores before this step's exploits.
            self.storage.apply_generation(self.experiment_id, step, self._orders, decided_by="vectorized")
            for member, order in self._orders.items():
                self._scores[member] = list(self._scores[order.donor])
        self._rows = {i: [] for i in self._rows}
        self._orders = {}

    def finish(self) -> None:
        if self.storage.is_finished(self.experiment_id):
            self.storage.set_experiment_status(self.experiment_id, "done")
