"""Strict backend config and MLproject parameter checks (the errors users see)."""

from __future__ import annotations

import pytest

from repro_mlflow.schedulers import get_scheduler
from repro_mlflow.schedulers.config import load_backend_config
from repro_mlflow.submit.project import check_params
from repro_mlflow.errors import ReproError

DECL = {
    "seed": {"type": "int", "default": 1},
    "lr": {"type": "float", "default": 0.1},
    "det": {"type": "bool", "default": True},
    "data": {"type": "string", "default": "keras", "choices": ["keras", "bundled"]},
    "path": "string",
}


def test_defaults_fill_and_bools_normalise():
    out = check_params("e", DECL, {"path": "x", "det": "OFF"})
    assert out == {"seed": "1", "lr": "0.1", "det": "false", "data": "keras", "path": "x"}


@pytest.mark.parametrize("params, msg", [
    ({"path": "x", "seed": "one"}, "'seed' must be an integer"),
    ({"path": "x", "lr": "fast"}, "'lr' must be a number"),
    ({"path": "x", "det": "maybe"}, "'det' must be true or false"),
    ({"path": "x", "data": "nope"}, "must be one of keras, bundled"),
    ({}, "missing value for parameter 'path'"),
])
def test_bad_params_raise_one_line(params, msg):
    with pytest.raises(ReproError, match=msg) as e:
        check_params("e", DECL, params)
    assert "\n" not in str(e.value)


def test_backend_config_strict_keys_and_types(tmp_path):
    with pytest.raises(ReproError, match="unknown local backend-config key"):
        get_scheduler("local", {"paralel": 2})
    with pytest.raises(ReproError, match="'parallel' must be int"):
        get_scheduler("local", {"parallel": "2"})
    with pytest.raises(ReproError, match="parallel must be at least 1"):
        get_scheduler("local", {"parallel": 0})
    assert get_scheduler("local", {"parallel": 3}).config.parallel == 3


def test_backend_config_from_json_file_and_mlflow_keys_are_ignored(tmp_path):
    f = tmp_path / "cfg.json"
    f.write_text('{"parallel": 2}')
    user, own = load_backend_config(str(f))
    assert user == {"parallel": 2} and own == {}
    user, own = load_backend_config({"parallel": 2, "SYNCHRONOUS": False, "build_image": False})
    assert user == {"parallel": 2} and set(own) == {"SYNCHRONOUS", "build_image"}
    with pytest.raises(ReproError, match="not found"):
        load_backend_config(str(tmp_path / "missing.json"))
    with pytest.raises(ReproError, match="not valid JSON"):
        load_backend_config("{nope")
