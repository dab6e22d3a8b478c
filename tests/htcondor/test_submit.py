"""Submit descriptions per hardware target (golden files), item data, dry runs, bad config."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import htcondor2
import pytest
from omegaconf import OmegaConf

from repro_mlflow.schedulers import get_scheduler
from repro_mlflow.schedulers.htcondor import submit as hs
from repro_mlflow.schedulers.htcondor import HTCondorConfig
from repro_mlflow.errors import ReproError

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
TARGETS = ["osg_cpu", "osg_gpu", "osg_a100", "osg_v100", "osg_rtx6000"]
WORKDIR = Path("/home/user/.repro/batches/htcondor-GOLDEN")  # fixed, so the golden files are stable


def target_config(name: str) -> tuple[dict, HTCondorConfig]:
    """The target's scheduler config as repro-sweep builds it: backend_config plus the target's container."""
    from repro_mlflow.sweep.plan import Target
    from repro_mlflow.sweep.submit import scheduler_config

    node = OmegaConf.load(ROOT / "conf" / "hardware" / f"{name}.yaml")
    target = OmegaConf.to_container(node, resolve=True)
    return target, get_scheduler("htcondor", scheduler_config(Target.from_dict(target), None, None)).config


def render(cfg: HTCondorConfig, tmp_path: Path, n: int = 3) -> str:
    inputs = [WORKDIR / "repro_runtime.zip", WORKDIR / "project.tar.gz", WORKDIR / "batch.json"]
    sub = hs.description(cfg, WORKDIR, inputs, WORKDIR / "repro_job.py")
    assert isinstance(sub, htcondor2.Submit)
    sub_path, _ = hs.write_submit_files(sub, hs.item_data([f"run{i:02d}" for i in range(n)]), tmp_path)
    return sub_path.read_text().replace(str(tmp_path), "<batch>")


@pytest.mark.parametrize("name", TARGETS)
def test_target_submit_description_matches_golden(name, tmp_path):
    target, cfg = target_config(name)
    assert target["name"] == name and target["backend"] == "htcondor"
    text = render(cfg, tmp_path)
    golden = GOLDEN / f"{name}.sub"
    if os.environ.get("REPRO_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()
    # what the submit language makes of it (the real parser, macros expanded for proc 0)
    sub = htcondor2.Submit(text.replace("<batch>", str(tmp_path)))
    sub["run_id"], sub["run_index"] = "run00", "0"
    assert sub.expand("initialdir") == f"{WORKDIR}/runs/0"
    assert sub.expand("arguments") == "run00 0"
    assert sub["container_image"] == target["container"]
    assert sub["when_to_transfer_output"] == "ON_EXIT_OR_EVICT"
    assert sub["transfer_output_files"] == "repro_out"
    assert sub["log"] == f"{WORKDIR}/cluster.log"
    if target["gpu"] and target["gpu"] != "any NVIDIA GPU":
        assert sub["request_gpus"] == "1"
        assert "GPUs_DeviceName" in sub["requirements"]
    elif name == "osg_cpu":
        assert "request_gpus" not in sub and "Microarch" in sub["requirements"]


@pytest.mark.parametrize("name", TARGETS)
def test_target_groups_runs_by_itself_with_its_list_values_kept(name):
    """repro-sweep groups runs per target (a dict key): `microarch: [...]` once made that fail ("unhashable type")."""
    from repro_mlflow.sweep.plan import Target

    raw = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "hardware" / f"{name}.yaml"), resolve=True)
    batches = {Target.from_dict(raw): "batch", Target.from_dict(raw): "same batch"}
    [target] = batches
    assert target.config() == raw["backend_config"]


def test_every_ospool_knob_reaches_the_description(tmp_path):
    cfg = HTCondorConfig(
        container="/cvmfs/singularity.opensciencegrid.org/opensciencegrid/tensorflow-gpu:2.3",
        request_cpus=4, request_memory="16GB", request_disk="20GB", request_gpus=2,
        gpus_minimum_capability=8.0, gpus_minimum_memory=40000, require_gpus="Capability < 9.0",
        gpu_name_regex="A100", microarch=["x86_64-v4"], cpu_model_regex="EPYC", requirements="HAS_SINGULARITY",
        project_name="Repro_Study", job_duration="Long", desired_sites=["SDSC-PRP", "UCSD"], max_retries=5,
        submit_extra={"+WantGlidein": "true"},
    )
    sub = htcondor2.Submit(render(cfg, tmp_path).replace("<batch>", str(tmp_path)))
    assert sub["universe"] == "container"
    assert sub["container_image"].startswith("/cvmfs/")
    assert (sub["request_cpus"], sub["request_memory"], sub["request_disk"], sub["request_gpus"]) == ("4", "16GB", "20GB", "2")
    assert (sub["gpus_minimum_capability"], sub["gpus_minimum_memory"], sub["require_gpus"]) == ("8.0", "40000", "Capability < 9.0")
    assert sub["requirements"] == ('regexp("A100", GPUs_DeviceName) && (Microarch == "x86_64-v4") && '
                                   'regexp("EPYC", OSGVO_CPU_MODEL) && (HAS_SINGULARITY)')
    assert sub["MY.ProjectName"] == '"Repro_Study"'
    assert sub["MY.JobDurationCategory"] == '"Long"'
    assert sub["MY.DESIRED_Sites"] == '"SDSC-PRP,UCSD"'
    assert sub["max_retries"] == "5"
    assert sub["MY.WantGlidein"] == "true"


def test_python_runs_the_wrapper_which_travels_as_an_input(tmp_path):
    """`python`: the execute point's own Python is the executable (not transferred); the wrapper is an input file."""
    sub = htcondor2.Submit(render(HTCondorConfig(python="/opt/venv/bin/python"), tmp_path).replace("<batch>", str(tmp_path)))
    assert (sub["executable"], sub["transfer_executable"]) == ("/opt/venv/bin/python", "false")
    assert sub["arguments"] == "repro_job.py $(run_id) $(run_index)"
    assert sub["transfer_input_files"].split(", ")[-1] == str(WORKDIR / "repro_job.py")


def test_item_data_for_100_runs_in_one_cluster(tmp_path):
    run_ids = [f"{i:032x}" for i in range(100)]
    items = hs.item_data(run_ids)
    assert len(items) == 100
    assert [it["run_index"] for it in items] == [str(i) for i in range(100)]
    assert [it["run_id"] for it in items] == run_ids
    _, cfg = target_config("osg_a100")
    sub = hs.description(cfg, tmp_path, [tmp_path / "batch.json"], tmp_path / "repro_job.py")
    sub_path, items_path = hs.write_submit_files(sub, items, tmp_path)
    # the real parser reads the dry run's queue statement and item file back: 100 procs of one cluster
    parsed = htcondor2.Submit(sub_path.read_text())
    back = list(parsed.itemdata())
    assert back == items
    assert parsed.getQArgs() == f"run_id,run_index from {items_path}"
    for i in (0, 57, 99):
        parsed["run_id"], parsed["run_index"] = back[i]["run_id"], back[i]["run_index"]
        assert parsed.expand("arguments") == f"{run_ids[i]} {i}"
        assert parsed.expand("initialdir") == f"{tmp_path}/runs/{i}"


@pytest.mark.parametrize("values, message", [
    ({"job_duration": "Forever"}, "job_duration must be one of Medium, Long"),
    ({"request_memory": "lots"}, "request_memory must be a size"),
    ({"container": "tensorflow/tensorflow"}, "container must be docker://"),
    ({"gpu_name_regex": "A100"}, "GPU constraints need request_gpus"),
    ({"request_cpus": "2"}, "must be int"),
    ({"schedd_name": "x"}, "unknown htcondor backend-config key"),
    ({"python": "venv/bin/python"}, "python must be an absolute path on the execute point"),
])
def test_bad_config_is_a_one_line_error(values, message):
    with pytest.raises(ReproError) as e:
        get_scheduler("htcondor", values)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_bad_config_from_the_mlflow_cli_leaves_nothing_behind(cli_env, tmp_path, project):
    r = subprocess.run(["mlflow", "run", str(project), "-e", "ok", "--backend", "repro-htcondor",
                        "--backend-config", '{"job_duration": "Forever"}'],
                       env=cli_env, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "job_duration must be one of Medium, Long" in r.stderr
    from mlflow.tracking import MlflowClient

    assert MlflowClient(cli_env["MLFLOW_TRACKING_URI"]).search_runs(["0"]) == []
    assert not (tmp_path / "repro" / "batches").exists() or not any((tmp_path / "repro" / "batches").iterdir())


def test_dry_run_from_the_mlflow_cli_writes_a_submittable_description(cli_env, project):
    r = subprocess.run(["mlflow", "run", str(project), "-e", "ok", "-P", "x=7", "--backend", "repro-htcondor",
                        "--backend-config", '{"dry_run": true, "project_name": "Repro_Test"}'],
                       env=cli_env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    line = next(ln for ln in r.stderr.splitlines() if "dry run: wrote" in ln)
    sub_path = Path(line.split("wrote ")[1].split(" and ")[0])
    sub = htcondor2.Submit(sub_path.read_text())
    [item] = list(sub.itemdata())
    from mlflow.tracking import MlflowClient

    [run] = MlflowClient(cli_env["MLFLOW_TRACKING_URI"]).search_runs(["0"])
    assert item == {"run_id": run.info.run_id, "run_index": "0"}
    assert run.info.status == "SCHEDULED" and run.data.tags["repro.job_id"] == f"dry-run.0@{sub_path.parent}"
    assert sub["MY.ProjectName"] == '"Repro_Test"'
    assert (sub_path.parent / "project.tar.gz").is_file() and (sub_path.parent / "repro_runtime.zip").is_file()
