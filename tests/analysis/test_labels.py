"""Environment labels from the fingerprint descriptors that tell the environments apart."""

import pandas as pd

from repro_mlflow.analysis import labels, pipeline

from .store import frame

INTEL = "Intel(R) Xeon(R) Platinum 8480+"
AMX = "avx512f,amx_bf16,amx_tile"


def _keyed(envs: dict[str, dict]) -> pd.DataFrame:
    rows = []
    for env, tags in envs.items():
        for rep in (0, 1):
            rows.append({"_env": env, **{f"tags.repro.{k}": v for k, v in tags.items()}, "tags.repro.repeat": rep})
    return pd.DataFrame(rows)


def test_four_fingerprints_told_apart_by_gpu_model_and_host():
    base = {"hw.cpu.model": INTEL, "hw.cpu.x86_64_level": "v4", "site": "WSU-GRID", "sw.tensorflow": "2.8.0"}
    envs = {"e1": {**base, "hw.gpu.name": "NVIDIA A100-SXM4-40GB", "host": "voh7"},
            "e2": {**base, "hw.gpu.name": "NVIDIA A100-SXM4-40GB", "host": "voh8"},
            "e3": {**base, "hw.gpu.name": "Quadro RTX 6000", "host": "rtx1"},
            "e4": {**base, "hw.gpu.name": "Quadro RTX 6000", "host": "rtx2"}}
    lab, legend = labels.environment_labels(_keyed(envs), "tags.repro.fp.env")
    assert lab == {"e1": "NVIDIA A100-SXM4-40GB @ voh7", "e2": "NVIDIA A100-SXM4-40GB @ voh8",
                   "e3": "Quadro RTX 6000 @ rtx1", "e4": "Quadro RTX 6000 @ rtx2"}
    assert legend[0]["key"] == "e1" and legend[0]["descriptors"]["repro.site"] == "WSU-GRID"
    assert legend[0]["descriptors"]["repro.hw.cpu.model"] == INTEL


def test_cpu_model_alone_when_only_it_differs():
    envs = {"x": {"hw.cpu.model": INTEL, "host": "vm"}, "y": {"hw.cpu.model": "AMD EPYC", "host": "vm"}}
    lab, _ = labels.environment_labels(_keyed(envs), "tags.repro.fp.env")
    assert lab == {"x": "Intel Xeon Platinum 8480+", "y": "AMD EPYC"}


def test_isa_named_when_it_differs_too():
    envs = {"x": {"hw.cpu.model": "Intel(R) Xeon(R) Processor", "hw.cpu.x86_64_level": "v4", "hw.cpu.flags": AMX},
            "y": {"hw.cpu.model": "AMD EPYC", "hw.cpu.x86_64_level": "v4", "hw.cpu.flags": "avx512f,avx512_bf16"}}
    lab, _ = labels.environment_labels(_keyed(envs), "tags.repro.fp.env")
    assert " | ".join(lab[e] for e in ("y", "x")) == "AMD EPYC, x86-64-v4 | Intel Xeon, x86-64-v4 + AMX"


def test_labels_reach_the_verdict_groups_and_classes():
    runs = []
    for env, cpu, acc in (("h1", "AMD EPYC", 0.9), ("h2", INTEL, 0.91)):
        for rep in (0, 1):
            runs.append({"tags": {"mlflow.project.entryPoint": "m", "repro.fp.env": env, "repro.repeat": rep,
                                  "repro.hw.cpu.model": cpu}, "metrics": {"acc": acc}})
    res, keyed = pipeline.analyse(frame(runs), pipeline.Options(artifacts=False))
    ex = res["examples"][0]
    assert ex["equivalence"][0]["classes"] == [["h1"], ["h2"]]  # the key stays the key
    assert ex["equivalence"][0]["class_labels"] == [["AMD EPYC"], ["Intel Xeon Platinum 8480+"]]
    assert {g["label"] for g in ex["groups"]} == {"AMD EPYC", "Intel Xeon Platinum 8480+"}
    assert "classes: AMD EPYC | Intel Xeon Platinum 8480+ (1 config(s))" in ex["verdict"]["lines"]
    assert set(keyed["_label"]) == {"AMD EPYC", "Intel Xeon Platinum 8480+"}


def test_by_a_setting_its_values_are_the_labels():
    runs = [{"tags": {"mlflow.project.entryPoint": "m", "repro.fp.env": "e", "repro.hw.cpu.model": INTEL},
             "params": {"threads": t}, "metrics": {"acc": 0.9}} for t in (1, 2)]
    res, _ = pipeline.analyse(frame(runs), pipeline.Options(by="threads", artifacts=False))
    assert res["examples"][0]["environment_labels"] == ["1", "2"]
