"""Schedule export: the documented JSON format and ``schedule.at(step)``."""

from __future__ import annotations

import json

import pytest

from poptrain.cli.main import main as cli
from poptrain.errors import ConfigError
from poptrain.reporting.schedule import FORMAT, Schedule, write_schedule

DOC = {
    "format": "poptrain.schedule/1",
    "metric": "acc",
    "mode": "max",
    "segments": [
        {"start_step": 0, "end_step": 4, "config": {"lr": 0.1, "opt": {"m": 0.9}}},
        {"start_step": 4, "end_step": 10, "config": {"lr": 0.05, "opt": {"m": 0.8}}, "donor": 3},
    ],
}


def test_at_gives_the_config_for_the_steps_completed():
    s = Schedule.from_json(DOC)
    assert [s.at(k)["lr"] for k in (0, 3, 4, 9, 10, 500)] == [0.1, 0.1, 0.05, 0.05, 0.05, 0.05]
    assert s.end_step == 10 and len(s) == 2 and s.changes() == [4]
    s.at(0)["lr"] = 99  # a copy: the schedule cannot be changed through it
    assert s.at(0)["lr"] == 0.1


def test_round_trip_through_text_and_file(tmp_path):
    s = Schedule.from_json(json.dumps(DOC))
    assert Schedule.from_json(s.dumps()) == s
    path = s.save(tmp_path / "a" / "schedule.json")
    assert Schedule.load(path) == s
    written = json.loads(path.read_text())
    assert written["format"] == FORMAT and written["segments"][1]["donor"] == 3


@pytest.mark.parametrize("bad, message", [
    ({"format": "other/1", "segments": []}, "Unknown schedule format 'other/1'"),
    ({"format": FORMAT}, "'segments' must be a list"),
    ({"format": FORMAT, "segments": []}, "at least one segment"),
    ({"format": FORMAT, "segments": [{"start_step": 0, "end_step": 3}]}, "must have start_step, end_step and config"),
    ({"format": FORMAT, "segments": [{"start_step": 1, "end_step": 3, "config": {}}]}, "must start at step 0"),
    ({"format": FORMAT, "segments": [{"start_step": 0, "end_step": 3, "config": {}},
                                     {"start_step": 4, "end_step": 6, "config": {}}]}, "must start at step 3"),
    ({"format": FORMAT, "segments": [{"start_step": 0, "end_step": -1, "config": {}}]}, "ends"),
    ("not json", "must be JSON"),
    ([1, 2], "must be a JSON object"),
])
def test_bad_schedules_say_what_is_wrong(bad, message):
    with pytest.raises(ConfigError, match=message):
        Schedule.from_json(bad if not isinstance(bad, list) else json.dumps(bad))


def test_at_rejects_negative_and_non_integer_steps():
    s = Schedule.from_json(DOC)
    with pytest.raises(ConfigError, match=">= 0"):
        s.at(-1)
    with pytest.raises(ConfigError, match="integer"):
        s.at(1.5)


def test_missing_file_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="Cannot read the schedule file"):
        Schedule.load(tmp_path / "nope.json")


def test_best_schedule_of_a_real_run_matches_its_history(quadratic_run, tmp_path):
    url, result = quadratic_run
    s = write_schedule(result, tmp_path / "s.json")
    assert s.member == result.best["member"] and s.metric == "Q" and s.end_step == result.best["step"]
    # The best member's weights trained each step with the config the schedule gives for that step:
    # follow the segments of its line of descent through the recorded history.
    segs = {x["segment"]: x for x in result.segments}
    by_step = {}
    node = next(m["segment"] for m in result.members if m["member"] == result.best["member"])
    until = result.best["step"]
    while node is not None:
        seg = segs[node]
        for step in range(seg["start_step"] + 1, until + 1):
            by_step[step] = seg["config"]
        until = seg["start_step"]
        node = seg["parent"]
    assert all(s.at(step - 1) == cfg for step, cfg in by_step.items())


def test_cli_best_writes_the_schedule(quadratic_run, tmp_path, capsys):
    url, result = quadratic_run
    out = tmp_path / "best.json"
    assert cli(["best", "--storage", url, "--schedule-out", str(out), "--json"]) == 0
    s = Schedule.load(out)
    assert s.score == pytest.approx(result.best["score"])
    assert [seg.config for seg in s] == [p["config"] for p in result.best["schedule"]]


def test_a_result_without_a_best_member_has_no_schedule():
    with pytest.raises(ConfigError, match="'x' has no best member yet"):
        Schedule.from_result({"experiment": {"name": "x"}, "best": None})
