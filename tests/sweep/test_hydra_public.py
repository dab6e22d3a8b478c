"""Hydra through its public API only: no module imports hydra._internal, the schema refuses bad input in
Hydra's words, HYDRA_FULL_ERROR=1 still shows Hydra's trace, and the runs never inherit repro-sweep's own setting."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from repro_mlflow.sweep.report import one_line
from tests.conftest import BIN, ROOT

from .conftest import HERE, echo_args, runs, sweep

_DOTTED = re.compile(r"hydra\._internal(\.\w+)*")
SOURCES = [ROOT / "repro_mlflow", ROOT / "hydra_plugins"]


def private_hydra_uses(source: str) -> list[str]:
    """Every import of hydra._internal in `source`, and any other mention of it (a `_target_`, importlib)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        found += [n for n in names if n == "hydra._internal" or n.startswith("hydra._internal.")]
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and _DOTTED.fullmatch(node.value):
            found.append(node.value)
    return found


def test_the_checker_finds_private_hydra():
    assert private_hydra_uses("import hydra._internal.utils as u") == ["hydra._internal.utils"]
    assert private_hydra_uses("from hydra._internal.config_loader_impl import ConfigLoaderImpl")
    assert private_hydra_uses("_target_ = 'hydra._internal.core_plugins.basic_sweeper.BasicSweeper'")
    assert private_hydra_uses("from hydra.core.plugins import Plugins\nimport hydra") == []


def test_no_module_of_the_package_or_plugin_uses_hydra_internal():
    files = [p for d in SOURCES for p in d.rglob("*.py") if "__pycache__" not in p.parts]
    assert len(files) > 50
    bad = {str(p.relative_to(ROOT)): uses for p in files if (uses := private_hydra_uses(p.read_text()))}
    assert not bad, bad


def test_the_schemas_are_in_hydras_config_store():
    repo = ConfigStore.instance().repo
    assert "repro_sweep.yaml" in repo and "repro_run.yaml" in repo
    assert repo["repro_run.yaml"].package == "repro"


@pytest.fixture
def echo_app_conf():
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(HERE / "app" / "conf"), version_base="1.3"):
        yield
    GlobalHydra.instance().clear()


def test_an_app_with_repro_run_in_its_defaults_has_its_repro_node_checked(echo_app_conf, monkeypatch):
    monkeypatch.setenv("ECHO_PROJECT", "/somewhere")
    cfg = compose("config", overrides=["repro.repeat=3"])
    assert cfg.repro.repeat == 3 and cfg.repro.entry_point == "echo" and cfg.repro.experiment == "echo-app"
    with pytest.raises((HydraException, OmegaConfBaseException)) as e:
        compose("config", overrides=["repro.repeat=often"])
    assert one_line(e.value) == ("Error merging override repro.repeat=often: "
                                 "Value 'often' of type 'str' could not be converted to Integer")
    with pytest.raises((HydraException, OmegaConfBaseException)) as e:
        compose("config", overrides=["repro.entry_pont=echo"])
    assert "Key 'entry_pont' not in 'RunConf'" in one_line(e.value)


def test_hydra_full_error_shows_hydras_own_trace(env, tracking):
    p = sweep(["threads=abc", "--detach"], dict(env, HYDRA_FULL_ERROR="1"), check=False)
    assert p.returncode != 0
    assert "Traceback (most recent call last)" in p.stderr
    assert "Value 'abc' of type 'str' could not be converted to Integer" in p.stderr
    assert "repro-sweep: error:" not in p.stderr
    assert not Path(tracking[len("sqlite:///"):]).exists()


@pytest.mark.parametrize("user", [None, "1"])
def test_the_runs_get_the_users_hydra_full_error_not_repro_sweeps(env, tracking, user):
    env = {k: v for k, v in env.items() if k != "HYDRA_FULL_ERROR"}
    if user:
        env["HYDRA_FULL_ERROR"] = user
    sweep(echo_args("seed=5", f"sweep=env-{user}", "poll_interval=0.5"), env)
    [run] = runs(f"tags.`repro.sweep` = 'env-{user}' and attributes.status = 'FINISHED'")
    log = subprocess.run([str(BIN / "repro"), "logs", run.info.run_id], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert "seed=5 threads=0 python=" in log.stdout, log.stdout + log.stderr
    assert f"HYDRA_FULL_ERROR={user}" in log.stdout


def test_an_empty_or_repeated_key_is_refused_by_the_sweeper_itself(env, tracking):
    for args, message in ((["seed=1,2", "seed=3"], "conflicting overrides: 'seed=1,2' and 'seed=3'"),
                          (["repeat=range(0)"], "empty sweep: 'repeat=range(0)' has no values")):
        p = sweep([*args, "--dry-run"], env, check=False)
        assert p.returncode == 1 and p.stderr.strip() == f"repro-sweep: error: {message}", p.stderr

