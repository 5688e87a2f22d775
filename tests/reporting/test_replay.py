"""Replay: a fresh member trained along the best schedule, with no weight copying."""

from __future__ import annotations

import pytest

from poptrain.cli.main import main as cli
from poptrain.errors import ConfigError, TrainableError
from poptrain.reporting.replay import replay
from poptrain.reporting.schedule import Schedule


def test_the_quadratic_schedule_replays_to_within_one_percent_of_the_pbt_best(quadratic_run):
    url, result = quadratic_run
    from poptrain.trainable import resolve

    schedule = Schedule.from_result(result)
    outcome = replay(resolve(result.experiment["trainable"]), schedule)
    best = result.best["score"]
    assert outcome.steps == result.best["step"] == 200
    assert outcome.score == pytest.approx(best, rel=0.01)
    assert outcome.relative_difference < 0.01
    # Neither member alone gets past Q = 0.39; the schedule is what reaches the optimum 1.2.
    assert outcome.score > 1.1


def test_replay_command_prints_both_scores(quadratic_run, capsys):
    url, result = quadratic_run
    assert cli(["replay", "--storage", url]) == 0
    out = capsys.readouterr().out
    assert "replayed schedule" in out and "PBT best" in out and "difference" in out


class _NoApply:
    """A trainable without apply_config: a config change rebuilds it and restores its state."""

    built = []

    def __init__(self, config):
        self.x = 0.0
        self.rate = config["rate"]
        _NoApply.built.append(config["rate"])

    def step(self):
        self.x += self.rate
        return {"x": self.x}

    def state_dict(self):
        return {"x": self.x}

    def load_state_dict(self, state):
        self.x = state["x"]


def _schedule(metric="x"):
    return Schedule.from_json({"format": "poptrain.schedule/1", "metric": metric, "score": 7.0, "segments": [
        {"start_step": 0, "end_step": 3, "config": {"rate": 1.0}},
        {"start_step": 3, "end_step": 5, "config": {"rate": 2.0}}]})


def test_without_apply_config_the_member_is_rebuilt_and_keeps_its_weights():
    _NoApply.built.clear()
    seen = []
    outcome = replay(_NoApply, _schedule(), on_step=lambda step, m, cfg: seen.append((step, cfg["rate"])))
    assert outcome.score == 7.0 and outcome.difference == 0.0
    assert _NoApply.built == [1.0, 2.0]
    assert seen == [(1, 1.0), (2, 1.0), (3, 1.0), (4, 2.0), (5, 2.0)]


def test_replay_can_run_past_the_schedule_and_checks_its_input():
    assert replay(_NoApply, _schedule(), steps=6).score == 9.0
    with pytest.raises(ConfigError, match="'steps' argument of replay must be >= 1"):
        replay(_NoApply, _schedule(), steps=0)
    with pytest.raises(TrainableError, match="without the metric 'y'"):
        replay(_NoApply, _schedule(), metric="y")
    with pytest.raises(ConfigError, match="must be a class"):
        replay(object(), _schedule())
