"""Planning: each job's run description, parameters passed, and the config hash."""

from __future__ import annotations

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode

from repro_mlflow.sweep.app import CONF
from repro_mlflow.sweep.compose import JobComposer
from repro_mlflow.sweep.plan import Planner, build_plan


@pytest.fixture
def composer():
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration("config", [], RunMode.MULTIRUN)
        yield JobComposer(loader, master)
    GlobalHydra.instance().clear()


JOBS = [
    ["example=mnist_convnet", "seed=3", "repeat=2"],
    ["example=mnist_convnet", "seed=3", "repeat=2", "hardware=slurm", "detach=true"],
    ["example=mnist_convnet", "++params.epochs=1", "++params.data=bundled", "threads=4", "op_determinism=false"],
    ["example=mnist_convnet", "example.params.batch_size=64", "software=tf2_20", "xla=true"],
    ["example=mnist_convnet", "hardware.backend_config.parallel=3", "experiment=other", "sweep=s1"],
    ["example=mnist_convnet", "+example.params.threads=2"],
    # values the schema converts (repro_mlflow/sweep/schema.py): the fast path takes them as Hydra does
    ["example=mnist_convnet", "op_determinism=1", "seed='7'", "repeat='2'", "threads=3"],
]


@pytest.mark.parametrize("overrides", JOBS, ids=[" ".join(j) for j in JOBS])
def test_fast_composition_equals_hydra_composition(composer, overrides):
    fast = composer.job(overrides)
    slow = composer.job(overrides, fast=False)
    assert fast == slow


def test_only_adds_and_deletes_fall_back_to_hydra(composer):
    for job in JOBS[:5]:
        composer.job(job)
    assert composer.slow == 0
    composer.job(JOBS[5])
    assert composer.slow == 1
    job = composer.job(JOBS[6])
    assert composer.slow == 1
    assert job["factors"]["op_determinism"] is True and job["factors"]["seed"] == 7 and job["repeat"] == 2


@pytest.fixture
def echo_composer():
    """Composer with tests/sweep/conf_extra on the search path: its `echo` example declares only
    seed, sleep, fail and threads (the real examples declare every factor)."""
    from pathlib import Path

    here = Path(__file__).parent
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration(
            "config", [f"hydra.searchpath=[file://{here / 'conf_extra'}]"], RunMode.MULTIRUN)
        yield JobComposer(loader, master)
    GlobalHydra.instance().clear()


ECHO = ["example=echo", f"project_dir={__import__('pathlib').Path(__file__).parent / 'project'}"]


def _plan(composer, *jobs):
    planner = Planner()
    return [planner.plan_job(composer.job(j), j) for j in jobs]


def test_config_hash_ignores_repeat_and_target_but_not_seed_params_or_software(composer):
    base, rep, slurm, seed, epochs, sw = _plan(
        composer,
        ["seed=1"], ["seed=1", "repeat=4"], ["seed=1", "hardware=slurm"], ["seed=2"],
        ["seed=1", "example.params.epochs=3"], ["seed=1", "software=tf2_20"],
    )
    assert base.config_hash == rep.config_hash == slurm.config_hash
    assert len({base.config_hash, seed.config_hash, epochs.config_hash, sw.config_hash}) == 4
    assert (base.key, rep.key, slurm.key) == ((base.config_hash, "0", "local"), (base.config_hash, "4", "local"),
                                              (base.config_hash, "0", "slurm"))


def test_hash_is_over_effective_values(composer):
    # Passing an entry point's default explicitly is the same config as leaving it out.
    default, explicit = _plan(composer, ["seed=1"], ["seed=1", "threads=0"])
    assert default.config_hash == explicit.config_hash


def test_factors_the_entry_point_does_not_declare_are_not_passed(echo_composer):
    [run] = _plan(echo_composer, [*ECHO, "xla=true", "tf32=false", "threads=2"])
    assert "xla" not in run.params and "tf32" not in run.params and "--xla" not in run.command
    assert run.params["threads"] == "2" and "--threads 2" in run.command
    plan = build_plan([run])
    assert "echo does not take 'xla': not passed to it" in plan.notes


def test_duplicate_runs_are_planned_once_and_the_sweep_name_is_stable(echo_composer):
    a = build_plan(_plan(echo_composer, [*ECHO, "seed=1", "xla=true"], [*ECHO, "seed=1", "xla=false"], [*ECHO, "seed=2"]))
    b = build_plan(_plan(echo_composer, [*ECHO, "seed=2"], [*ECHO, "seed=1"]))
    assert len(a.runs) == 2 and a.duplicates == 1
    assert a.sweep == b.sweep and a.sweep.startswith("sweep-")


def test_runs_are_grouped_one_batch_per_target_and_software(composer):
    plan = build_plan(_plan(composer, ["seed=1"], ["seed=2"], ["seed=1", "hardware=slurm"], ["seed=1", "software=tf2_20"]))
    sizes = sorted((t.name, s.name, len(r)) for (t, s), r in plan.groups().items())
    assert sizes == [("local", "current", 2), ("local", "tf2_20", 1), ("slurm", "current", 1)]


def test_a_target_with_list_settings_plans_and_keeps_them(composer):
    """osg_cpu's `microarch` is a list: the plan groups runs by target (hashable) and hands the list back."""
    plan = build_plan(_plan(composer, *[["example=mnist_convnet", "hardware=osg_cpu", f"seed={s}"] for s in (1, 2)]))
    (target, _software), runs = next(iter(plan.groups().items()))
    assert len(runs) == 2 and target.config()["microarch"] == ["x86_64-v3", "x86_64-v4"]
