"""Live progress in the terminal: members done, steps done/total, best score, exploits."""

from __future__ import annotations

import math
from typing import Any, Callable

import sqlalchemy as sa

from poptrain.storage import Storage, schema


def progress_of(st: Storage, exp_id: int, total_steps: int, mode: str) -> dict[str, Any]:
    """One cheap query's worth of progress figures."""
    members = st.members(exp_id)
    scores = [m.scores[-1] for m in members if m.scores and math.isfinite(m.scores[-1])]
    best = (max(scores) if mode == "max" else min(scores)) if scores else None
    S = schema.segments
    with st.engine.connect() as conn:
        exploits = conn.execute(
            sa.select(sa.func.count()).select_from(S).where(S.c.experiment_id == exp_id, S.c.donor.is_not(None))
        ).scalar_one()
    return dict(
        members=len(members),
        done=sum(m.state == "done" for m in members),
        failed=sum(m.state == "failed" for m in members),
        steps=st.count_history(exp_id),
        total_steps=total_steps,
        best=best,
        exploits=exploits,
    )


class ProgressReporter:
    def __init__(self, st: Storage, exp_id: int, total: int, mode: str,
                 callback: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.st, self.exp_id, self.total, self.mode, self.callback = st, exp_id, total, mode, callback
        self._progress = None
        if callback is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("[bold]PBT"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
                TextColumn("{task.fields[info]}"), TimeElapsedColumn(), transient=False,
            )
            self._task = self._progress.add_task("pbt", total=total, info="")
            self._progress.start()

    def update(self) -> None:
        try:
            p = progress_of(self.st, self.exp_id, self.total, self.mode)
        except Exception as exc:  # noqa: BLE001 - a database blip must not stop the run; the workers wait it out
            from poptrain.storage.retry import is_transient

            if not is_transient(exc):
                raise
            return
        if self.callback is not None:
            self.callback(p)
            return
        best = "-" if p["best"] is None else f"{p['best']:.4g}"
        info = f"members done {p['done']}/{p['members']}  best {best}  exploits {p['exploits']}"
        if p["failed"]:
            info += f"  failed {p['failed']}"
        assert self._progress is not None
        self._progress.update(self._task, completed=p["steps"], info=info)

    def close(self) -> None:
        if self._progress is not None:
            self.update()
            self._progress.stop()
