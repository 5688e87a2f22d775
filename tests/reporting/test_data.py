"""The population as the plots see it: ancestors, best line of descent, diversity, edges."""

from __future__ import annotations

import math

import pytest

from poptrain.reporting.data import (
    NothingToReport,
    downsample,
    flatten,
    json_safe,
    lineage_edges,
    population,
    segment_ancestors,
    step_grid,
)
from poptrain.reporting.diversity import diversity


def _seg(sid, member, start, end, lr, parent=None, donor=None):
    return {"segment": sid, "member": member, "parent": parent, "start_step": start, "end_step": end,
            "config": {"opt": {"lr": lr}, "act": "relu" if member != 2 else "tanh"},
            "donor": donor, "donor_step": start if donor is not None else None}


def tiny_result():
    """Three members, six steps; member 1 copies member 0 at step 3."""
    segments = [_seg(1, 0, 0, 6, 0.1), _seg(2, 1, 0, 3, 0.01), _seg(3, 2, 0, 6, 0.001),
                _seg(4, 1, 3, 6, 0.12, parent=1, donor=0)]
    history = []
    for seg, member, steps, rate in ((1, 0, range(1, 7), 1.0), (2, 1, range(1, 4), 0.1),
                                     (3, 2, range(1, 7), 0.5), (4, 1, range(4, 7), 1.2)):
        for s in steps:
            base = 3.0 if seg == 4 else 0.0
            history.append({"member": member, "segment": seg, "step": s,
                            "metrics": {"acc": base + rate * (s - (3 if seg == 4 else 0)), "loss": 1.0}})
    lineage = [{"member": 1, "step": 3, "donor": 0, "donor_step": 3, "old_config": segments[1]["config"],
                "new_config": segments[3]["config"], "segment": 4, "parent_segment": 1}]
    members = [{"member": 0, "step": 6, "score": 6.0, "config": segments[0]["config"], "state": "done", "segment": 1},
               {"member": 1, "step": 6, "score": 6.6, "config": segments[3]["config"], "state": "done", "segment": 4},
               {"member": 2, "step": 6, "score": 3.0, "config": segments[2]["config"], "state": "done", "segment": 3}]
    best = {"member": 1, "score": 6.6, "step": 6, "config": segments[3]["config"],
            "schedule": [{"start_step": 0, "end_step": 3, "config": segments[0]["config"], "donor": None},
                         {"start_step": 3, "end_step": 6, "config": segments[3]["config"], "donor": 0}]}
    return {"experiment": {"name": "tiny", "metric": "acc", "mode": "max", "population": 3, "budget": 6},
            "members": members, "history": history, "segments": segments, "lineage": lineage, "best": best}


def test_ancestor_of_each_segment_is_the_member_its_chain_starts_from():
    pop = population(tiny_result())
    assert pop.ancestor == {1: 0, 2: 1, 3: 2, 4: 0}


def test_ancestors_survive_a_missing_parent_and_a_cycle():
    segs = [{"segment": 1, "member": 0, "parent": 99}, {"segment": 2, "member": 1, "parent": 3},
            {"segment": 3, "member": 2, "parent": 2}]
    anc = segment_ancestors(segs)
    assert anc[1] == 0
    assert set(anc) == {1, 2, 3}


def test_best_chain_follows_the_exploit_back_to_the_donor():
    pop = population(tiny_result())
    assert pop.best_chain() == [(1, 0, 3), (4, 3, 6)]


def test_score_at_falls_back_to_the_donor_before_a_segment_starts():
    pop = population(tiny_result())
    assert pop.score_at(1, 3) == 3.0
    assert pop.score_at(4, 3) == 3.0  # segment 4 has no point at 3: its parent's score
    assert pop.score_at(4, 5) == pytest.approx(5.4)


def test_diversity_counts_surviving_ancestors_and_spread_in_unit_coordinates():
    pop = population(tiny_result())
    div = diversity(pop)
    assert div["step"] == [1, 2, 3, 4, 5, 6]
    assert div["ancestors"] == [3, 3, 3, 2, 2, 2]
    assert div["alive"] == [3] * 6
    # Without a readable space, lr spans more than a decade and is placed on a log scale
    # over the values seen (0.001 .. 0.12).
    spread = div["spread"]["opt.lr"]
    span = math.log(0.12 / 0.001)

    def std(values):
        units = [math.log(v / 0.001) / span for v in values]
        mean = sum(units) / len(units)
        return math.sqrt(sum((u - mean) ** 2 for u in units) / len(units))

    assert spread[0] == pytest.approx(std([0.1, 0.01, 0.001]))
    assert spread[-1] == pytest.approx(std([0.1, 0.001, 0.12]))  # member 1 now trains with 0.12
    assert div["spread_kind"]["act"] == "normalised entropy"
    assert div["spread"]["act"][0] == pytest.approx(0.918, abs=0.01)  # two relu, one tanh


def test_diversity_uses_the_search_space_when_it_is_stored():
    from poptrain.space import Choice, Float, Space

    res = tiny_result()
    res["experiment"]["space"] = Space({"opt": {"lr": Float(1e-4, 1.0, log=True)},
                                        "act": Choice(["relu", "tanh"])}).to_json()
    pop = population(res)
    assert pop.params == ["act", "opt.lr"]
    div = diversity(pop)
    # log10 positions in [-4, 0]: 0.75, 0.5, 0.25 → std 0.204
    assert div["spread"]["opt.lr"][0] == pytest.approx(0.204, abs=0.001)


def test_lineage_edges_come_from_events_and_from_segments_without_one():
    res = tiny_result()
    pop = population(res)
    assert [(e["member"], e["donor"], e["donor_step"]) for e in lineage_edges(pop)] == [(1, 0, 3)]
    res["lineage"] = []
    assert [(e["member"], e["donor"], e["donor_step"]) for e in lineage_edges(population(res))] == [(1, 0, 3)]


def test_an_experiment_without_any_step_has_nothing_to_report():
    with pytest.raises(NothingToReport, match="'empty' has not trained any step"):
        population({"experiment": {"name": "empty"}, "members": [], "history": [], "segments": []})


def test_nan_scores_become_gaps():
    res = tiny_result()
    res["history"][0]["metrics"]["acc"] = math.nan
    res["history"][1]["metrics"]["acc"] = math.inf
    pop = population(res)
    assert pop.points[1][0] == (1, None) and pop.points[1][1] == (2, None)


def test_helpers():
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {"a.b": 1, "a.c.d": 2, "e": 3}
    assert json_safe({"x": [1.0, math.nan, -math.inf]}) == {"x": [1.0, None, None]}
    assert step_grid(5) == [1, 2, 3, 4, 5]
    grid = step_grid(1000, 200)
    assert len(grid) <= 201 and grid[-1] == 1000 and grid == sorted(set(grid))
    pts = [(i, i) for i in range(1000)]
    thin = downsample(pts, 50)
    assert len(thin) <= 50 and thin[0] == (0, 0) and thin[-1] == (999, 999)
