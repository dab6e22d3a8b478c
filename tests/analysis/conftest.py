"""Analysis tests run in their own temporary directory (MLflow puts local artifacts under ./mlruns)."""

import pytest


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
