"""Errors raised by poptrain. Each names the thing that is wrong and why."""

from __future__ import annotations


class PoptrainError(Exception):
    """Base class of every error poptrain raises on purpose."""


class SpaceError(PoptrainError, ValueError):
    """A search space or a config does not fit its space."""


class ConfigError(PoptrainError, ValueError):
    """An experiment, strategy or CLI argument is invalid."""


class StorageError(PoptrainError):
    """The storage cannot be opened or holds something unexpected."""


class StorageUnavailable(StorageError):
    """The storage's database cannot be reached now (down, restarting, network); it may come back."""


class ExperimentMismatch(StorageError):
    """An experiment name is reused with a different definition."""


class CheckpointError(PoptrainError):
    """A checkpoint cannot be saved, found or verified."""


class UnsafeStateError(CheckpointError, TypeError):
    """A state holds a value that cannot be saved without pickle."""


class TrainableError(PoptrainError):
    """The user's trainable misbehaved (missing metric, bad return value)."""
