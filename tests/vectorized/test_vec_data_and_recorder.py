"""Batches from tensors or iterables; the in-memory recorder's lineage."""

from __future__ import annotations

import pytest
import torch

from poptrain.errors import ConfigError
from poptrain.vectorized.data import Batches
from poptrain.vectorized.recorder import MemoryRecorder


def test_tensor_batches_cover_the_data_once_per_epoch_and_shuffle_by_seed():
    x, y = torch.arange(10.0).unsqueeze(1), torch.arange(10)
    data = Batches((x, y), batch_size=3, shuffle=True, device="cpu", name="train_data")
    epoch = list(data.epoch(seed=1))
    assert [len(b[1]) for b in epoch] == [3, 3, 3, 1]
    seen = torch.cat([b[1] for b in epoch])
    assert sorted(seen.tolist()) == list(range(10))
    assert all(torch.equal(b[0].squeeze(1), b[1].float()) for b in epoch)
    again = torch.cat([b[1] for b in data.epoch(seed=1)])
    other = torch.cat([b[1] for b in data.epoch(seed=2)])
    assert torch.equal(seen, again) and not torch.equal(seen, other)


def test_batch_size_none_is_one_batch_and_iterables_are_passed_through():
    x, y = torch.zeros(5, 2), torch.zeros(5)
    assert len(list(Batches((x, y), batch_size=None, shuffle=True, device="cpu", name="d").epoch(seed=0))) == 1
    batches = [(x, y), (x[:2], y[:2])]
    data = Batches(batches, batch_size=None, shuffle=True, device="cpu", name="d")
    assert [len(b[1]) for b in data.epoch(seed=0)] == [5, 2]
    assert [len(b[1]) for b in data.epoch(seed=1)] == [5, 2]


@pytest.mark.parametrize("data, match", [
    ((torch.zeros(5, 2),), "at least 2"),
    ((torch.zeros(5, 2), torch.zeros(4)), "first dimension"),
    (iter([(torch.zeros(2), torch.zeros(2))]), "one-shot iterator"),
    ("abc", "tuple of tensors"),
])
def test_bad_data_is_named(data, match):
    with pytest.raises(ConfigError, match=match):
        Batches(data, batch_size=2, shuffle=False, device="cpu", name="train_data")


def test_bad_batch_in_an_iterable_is_named():
    data = Batches([(torch.zeros(2), torch.zeros(2)), {"x": 1}], batch_size=None, shuffle=False, device="cpu",
                   name="train_data")
    with pytest.raises(ConfigError, match="batch 1"):
        list(data.epoch(seed=0))


def test_lineage_parent_is_the_donors_segment_from_before_the_generation():
    rec = MemoryRecorder(metric="acc", mode="max")
    rec.start([{"lr": 1}, {"lr": 2}, {"lr": 3}], step=0)
    rec.record_steps(1, [{"acc": 0.1}, {"acc": 0.2}, {"acc": 0.3}])
    rec.record_exploit(1, 2, 1, {"lr": 2}, {"lr": 3.5})
    # Member 0 takes member 1's weights as they were before member 1's own exploit.
    rec.record_exploit(0, 1, 1, {"lr": 1}, {"lr": 2.5})
    rec.record_steps(2, [{"acc": 0.4}, {"acc": 0.5}, {"acc": 0.6}])
    rec.finish()
    r = rec.result
    assert [(s.member, s.start_step, s.end_step) for s in r.schedule(0)] == [(1, 0, 1), (0, 1, 2)]
    assert [(s.member, s.start_step) for s in r.schedule(1)] == [(2, 0), (1, 1)]
    assert r.configs == [{"lr": 2.5}, {"lr": 3.5}, {"lr": 3}]
    assert r.scores == [0.4, 0.5, 0.6] and r.best.member == 2


def test_best_ignores_nonfinite_scores_and_follows_mode():
    rec = MemoryRecorder(metric="loss", mode="min")
    rec.start([{}, {}, {}], step=0)
    rec.record_steps(1, [{"loss": float("nan")}, {"loss": 2.0}, {"loss": float("-inf")}])
    assert rec.result.best.member == 1
    rec.record_steps(2, [{"loss": float("nan")}] * 3)
    assert rec.result.best is None
