"""The digits MLP of ``examples/digits.py`` with its initial weights seeded from the config."""

from __future__ import annotations

from typing import Any

from examples.digits import DigitsMLP
from tasks import config_seed


class SeededDigitsMLP(DigitsMLP):
    def __init__(self, config: dict[str, Any]) -> None:
        import torch

        torch.manual_seed(config_seed(config))
        super().__init__(config)
