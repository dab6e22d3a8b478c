"""Fixtures of the example tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def examples_env(cli_env) -> dict:
    """cli_env with the frameworks' logging kept quiet."""
    return dict(cli_env, TF_CPP_MIN_LOG_LEVEL="3")
