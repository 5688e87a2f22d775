"""The stacked optimizers and the batched model against plain torch, member by member."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from poptrain.vectorized import SGD, Adam, AdamW, Population

torch.set_default_dtype(torch.float32)


def make_model() -> nn.Module:
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))


def batches(n: int = 6, size: int = 20, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, 6, generator=g), torch.randint(0, 3, (size,), generator=g)) for _ in range(n)]


def plain_loop(initial: dict, torch_opt, data) -> nn.Module:
    model = make_model()
    model.load_state_dict(initial)
    opt = torch_opt(model.parameters())
    for x, y in data:
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return model


CASES = [
    (SGD(), {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-3},
     lambda p, c: torch.optim.SGD(p, lr=c["lr"], momentum=c["momentum"], weight_decay=c["weight_decay"])),
    (SGD(), {"lr": 0.05},
     lambda p, c: torch.optim.SGD(p, lr=c["lr"])),
    (Adam(), {"lr": 1e-2, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6, "weight_decay": 1e-2},
     lambda p, c: torch.optim.Adam(p, lr=c["lr"], betas=(c["beta1"], c["beta2"]), eps=c["eps"],
                                   weight_decay=c["weight_decay"])),
    (AdamW(), {"lr": 3e-2, "beta1": 0.9, "beta2": 0.95, "weight_decay": 0.1},
     lambda p, c: torch.optim.AdamW(p, lr=c["lr"], betas=(c["beta1"], c["beta2"]),
                                    weight_decay=c["weight_decay"])),
]


@pytest.mark.parametrize("optimizer, config, torch_opt", CASES, ids=["sgd-momentum", "sgd", "adam", "adamw"])
def test_one_member_matches_plain_torch_loop(optimizer, config, torch_opt):
    pop = Population(model=make_model, loss=F.cross_entropy, optimizer=optimizer, configs=[config], seeds=[7])
    torch.manual_seed(7)  # the member's seed: the plain loop starts from the same weights
    initial = make_model().state_dict()
    for name, value in initial.items():
        assert torch.equal(pop.model.member_state_dict(0)[name], value)
    data = batches()
    for batch in data:
        pop.train_batch(batch)
    reference = plain_loop(initial, lambda p: torch_opt(p, config), data)
    got = pop.model.member_state_dict(0)
    for name, value in reference.state_dict().items():
        torch.testing.assert_close(got[name], value, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("optimizer, config, torch_opt", CASES, ids=["sgd-momentum", "sgd", "adam", "adamw"])
def test_each_member_matches_its_own_loop_with_its_own_hyperparameters(optimizer, config, torch_opt):
    # Every hyperparameter differs between members: lr and weight decay by a factor, the rest by a shift.
    configs = [{k: v * f if k in ("lr", "weight_decay", "eps") else v - shift for k, v in config.items()}
               for f, shift in ((0.5, 0.0), (1.0, 0.05), (3.0, 0.1))]
    pop = Population(model=make_model, loss=F.cross_entropy, optimizer=optimizer, configs=configs, seeds=[1, 2, 3])
    initials = [pop.model.member_state_dict(i) for i in range(3)]
    data = batches(seed=1)
    for batch in data:
        pop.train_batch(batch)
    for i, c in enumerate(configs):
        reference = plain_loop(initials[i], lambda p: torch_opt(p, c), data)
        got = pop.model.member_state_dict(i)
        for name, value in reference.state_dict().items():
            torch.testing.assert_close(got[name], value, rtol=1e-5, atol=1e-6)


def test_seeds_decide_initial_weights_and_global_rng_is_untouched():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = Population(model=make_model, loss=F.cross_entropy, optimizer=SGD(), configs=[{}, {}], seeds=[5, 6])
    assert torch.equal(torch.random.get_rng_state(), before)
    b = Population(model=make_model, loss=F.cross_entropy, optimizer=SGD(), configs=[{}], seeds=[6])
    torch.testing.assert_close(a.model.member_state_dict(1), b.model.member_state_dict(0))
    assert not torch.equal(a.model.params["0.weight"][0], a.model.params["0.weight"][1])


def test_buffers_are_stacked_and_updated_per_member():
    def bn_model() -> nn.Module:
        return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))

    pop = Population(model=bn_model, loss=F.cross_entropy, optimizer=SGD(), configs=[{"lr": 0.1}, {"lr": 0.0}],
                     seeds=[0, 1])
    initial = pop.model.member_state_dict(0)
    x, y = batches(n=1)[0]
    pop.train_batch((x, y))
    reference = bn_model()
    reference.load_state_dict(initial)
    opt = torch.optim.SGD(reference.parameters(), lr=0.1)
    F.cross_entropy(reference(x), y).backward()
    opt.step()
    got = pop.model.member_state_dict(0)
    for name, value in reference.state_dict().items():
        torch.testing.assert_close(got[name], value, rtol=1e-5, atol=1e-6)
