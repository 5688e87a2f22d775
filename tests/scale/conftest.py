"""The scale and fault tests import their helpers from this folder."""

from __future__ import annotations


def pytest_configure(config):
    config.addinivalue_line("markers", "ray: needs Ray (a local instance is started)")
