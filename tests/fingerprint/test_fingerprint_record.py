"""The record, its three hashes and its tags; the software and container probes."""

from __future__ import annotations

import copy
import json
import sys
import types
from importlib import metadata

from repro_mlflow.fingerprint import capture, hashes, to_tags
from repro_mlflow.fingerprint import software
from repro_mlflow.fingerprint.cpu import probe_cpu
from repro_mlflow.fingerprint.gpu import finish, parse_smi_xml
from repro_mlflow.tags import MAX_TAG_VALUE

from .helpers import fixture_text


def _recorded(cpu_file: str, gpu_file: str | None = None) -> dict:
    """A record built from recorded machines plus this process's software."""
    rec = capture(environ={})
    rec["cpu"] = probe_cpu(fixture_text("cpuinfo", cpu_file), root="")
    rec["gpu"] = finish(parse_smi_xml(fixture_text("nvidia-smi", gpu_file)) if gpu_file else None, environ={})
    return rec


def test_same_machine_twice_same_hashes():
    a, b = capture(), capture()
    assert hashes(a) == hashes(b) == a["hashes"] == b["hashes"]
    assert all(len(h) == 12 and int(h, 16) >= 0 for h in hashes(a).values())
    assert len(set(hashes(a).values())) == 3


def test_one_numerics_flag_changes_hw_and_env_not_sw():
    a = _recorded("archspec_intel_xeon_platinum_8480plus_sapphirerapids_1cpu.txt", "telegraf_nvidia-smi-q-x_A10G_drv515.xml")
    b = copy.deepcopy(a)
    b["cpu"]["flags"].remove("avx512_fp16")
    ha, hb = hashes(a), hashes(b)
    assert ha["hw"] != hb["hw"] and ha["env"] != hb["env"] and ha["sw"] == hb["sw"]


def test_gpu_model_changes_hw_and_env_not_sw():
    cpu = "archspec_amd_epyc_9654_zen4_1cpu.txt"
    t4 = hashes(_recorded(cpu, "telegraf_nvidia-smi-q-x_TeslaT4_drv515.xml"))
    a10g = hashes(_recorded(cpu, "telegraf_nvidia-smi-q-x_A10G_drv515.xml"))
    assert t4["hw"] != a10g["hw"] and t4["env"] != a10g["env"] and t4["sw"] == a10g["sw"]


def test_library_version_changes_sw_and_env_not_hw():
    a = capture(environ={})
    b = copy.deepcopy(a)
    b["software"]["frameworks"]["numpy"] = {"dist": "numpy", "version": "1.26.4"}
    ha, hb = hashes(a), hashes(b)
    assert ha["sw"] != hb["sw"] and ha["env"] != hb["env"] and ha["hw"] == hb["hw"]


def test_determinism_variable_changes_env_only():
    a = capture(environ={})
    b = capture(environ={"TF_DETERMINISTIC_OPS": "1"})
    ha, hb = hashes(a), hashes(b)
    assert ha["env"] != hb["env"] and ha["hw"] == hb["hw"] and ha["sw"] == hb["sw"]
    assert to_tags(b)["repro.env.TF_DETERMINISTIC_OPS"] == "1"
    # device selection is recorded but does not split environments
    c = capture(environ={"CUDA_VISIBLE_DEVICES": "3"})
    assert hashes(c) == ha and c["gpu"]["cuda_visible_devices"] == "3"


def test_hashes_ignore_host_microcode_cores_time_and_mlflow():
    """Hosts of one kind, across reboots and slots, share the hashes."""
    a = _recorded("cadvisor_intel_xeon_gold_5218R_avx512_32cpu_vm_full.txt", "telegraf_nvidia-smi-q-x_TeslaT4_drv515.xml")
    b = copy.deepcopy(a)
    b["site"]["host"] = "another-node"
    b["cpu"].update(microcode="0xdeadbeef", logical_cores=8, physical_cores=4, usable_cores=2, affinity_cores=2)
    b["gpu"]["devices"][0].update(uuid_hash="000000000000", memory_mib=1)
    b["gpu"]["count"] = 4
    b["gpu"]["driver"] = "999.1"
    b["captured_at"] = "2030-01-01T00:00:00Z"
    b["software"]["kernel"] = "9.9.9"
    b["software"]["frameworks"]["mlflow"] = {"dist": "mlflow-skinny", "version": "9.0"}
    assert hashes(a) == hashes(b)


def test_tags_are_short_and_under_repro():
    rec = capture()
    rec["cpu"]["model"] = "x" * 1000
    tags = to_tags(rec)
    assert all(k.startswith("repro.") for k in tags)
    assert all(isinstance(v, str) and len(v) <= MAX_TAG_VALUE for v in tags.values())
    assert len(tags) <= 100  # one MLflow log_batch
    assert tags["repro.fp.hw"] == hashes(rec)["hw"] != rec["hashes"]["hw"]  # the long model moved it
    json.dumps(rec)  # the artifact is plain JSON


def test_tensorflow_cpu_is_tagged_as_tensorflow():
    dists = software.installed()
    tf_dist = next((n for n in software.FRAMEWORKS["tensorflow"] if n in dists), None)
    assert tf_dist, "the shared venv has a TensorFlow distribution"
    tags = to_tags(capture())
    assert tags["repro.sw.tensorflow"] == metadata.version(tf_dist)
    assert not any(k.startswith("repro.sw.tensorflow-") for k in tags)
    assert software.frameworks({"tf-nightly": "2.22.0.dev1"})["tensorflow"] == {"dist": "tf-nightly", "version": "2.22.0.dev1"}


def test_versions_match_package_metadata_without_importing():
    dists = software.installed()
    for name in ("numpy", "keras", "jax", "torch", "mlflow"):
        assert dists[name] == metadata.version(name), name
    fresh = [m for m in ("tensorflow", "torch", "jax") if m not in sys.modules]
    capture()
    assert [m for m in fresh if m in sys.modules] == []  # capture imported no framework


def test_package_list_hash_follows_the_list():
    dists = software.installed()
    h = software.packages_hash(dists)
    assert software.packages_hash(dict(dists)) == h
    assert software.packages_hash({**dists, "numpy": "0.0.1"}) != h
    assert software.packages_hash({k: v for k, v in dists.items() if k != "rich"}) != h


def test_builds_only_from_imported_frameworks():
    fake_tf = types.SimpleNamespace(sysconfig=types.SimpleNamespace(
        get_build_info=lambda: {"cuda_version": "12.2", "cudnn_version": "8", "is_cuda_build": True}))
    b = software.builds(modules={"tensorflow": fake_tf}, dists={})
    assert b["tensorflow"] == {"cuda_version": "12.2", "cudnn_version": "8", "is_cuda_build": "True"}
    assert software.cuda_version(b, {}) == "12.2"
    assert software.builds(modules={}, dists={}) == {}
    wheel = software.builds(modules={}, dists={"torch": "2.5.1+cu121"})
    assert wheel["torch"] == {"wheel": "cu121", "cuda_version": "12.1"}
    assert software.cuda_version({}, {"nvidia-cuda-runtime-cu12": "12.4.127"}) == "12.4"


def test_numeric_libs_pick_cuda_and_blas_wheels():
    libs = software.numeric_libs({"nvidia-cudnn-cu12": "9.1.0.70", "nvidia-ml-py": "12.5", "jax-cuda12-plugin": "0.4.30",
                                  "scipy-openblas64": "0.3.27", "rich": "13.0", "mkl": "2024.1"})
    assert libs == {"nvidia-cudnn-cu12": "9.1.0.70", "jax-cuda12-plugin": "0.4.30", "scipy-openblas64": "0.3.27",
                    "mkl": "2024.1"}


def test_container_detection(tmp_path):
    env = {"APPTAINER_CONTAINER": "/cvmfs/singularity.opensciencegrid.org/tensorflow/tensorflow:2.8.0-gpu",
           "APPTAINER_NAME": "tensorflow:2.8.0-gpu"}
    assert software.probe_container(env, root=tmp_path) == {
        "runtime": "apptainer", "image": "tensorflow:2.8.0-gpu", "path": env["APPTAINER_CONTAINER"]}
    assert software.probe_container({"SINGULARITY_CONTAINER": "/images/tf.sif"}, root=tmp_path)["image"] == "tf.sif"
    assert software.probe_container({}, root=tmp_path) is None
    (tmp_path / ".dockerenv").write_text("")
    digest = "sha256:" + "ab" * 32
    d = software.probe_container({"REPRO_CONTAINER_IMAGE": f"tensorflow/tensorflow:2.8.0-gpu@{digest}"}, root=tmp_path)
    assert d == {"runtime": "docker", "image": f"tensorflow/tensorflow:2.8.0-gpu@{digest}", "digest": digest}
    (tmp_path / "run").mkdir()
    (tmp_path / "run/.containerenv").write_text('engine="podman-4.9.3"\nname="x"\nimage="docker.io/library/python:3.11"\n'
                                                'imageid="5f1a"\nrootless=1\n')
    assert software.probe_container({}, root=tmp_path) == {"runtime": "podman", "image": "docker.io/library/python:3.11",
                                                            "digest": "5f1a"}
    job = software.probe_container({}, root="/nonexistent", job_ad={"ContainerImage": "docker://tensorflow/tensorflow:2.8.0-gpu"})
    assert job["image"] == "docker://tensorflow/tensorflow:2.8.0-gpu"


def test_container_image_moves_sw_hash():
    a = capture(environ={})
    b = capture(environ={"APPTAINER_NAME": "tensorflow_2.8.0-gpu.sif", "APPTAINER_CONTAINER": "/x/tensorflow_2.8.0-gpu.sif"})
    assert hashes(a)["sw"] != hashes(b)["sw"] and hashes(a)["hw"] == hashes(b)["hw"]
    assert to_tags(b)["repro.sw.container"] == "tensorflow_2.8.0-gpu.sif"


def test_imported_framework_settings_are_read_in_process():
    """After a project imported torch and set determinism, capture() reports what is in force."""
    import subprocess

    from .helpers import ROOT

    code = ("import json, torch; torch.use_deterministic_algorithms(True); torch.set_num_threads(1);"
            "from repro_mlflow.fingerprint import capture; r = capture(environ={});"
            "print(json.dumps([r['determinism']['frameworks'], r['software']['builds'], r['hashes']]))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert p.returncode == 0, p.stderr[-2000:]
    frameworks, builds, h = json.loads(p.stdout)
    assert frameworks["torch"]["deterministic_algorithms"] is True and frameworks["torch"]["threads"] == 1
    assert builds["torch"]["cuda_version"] is None  # the CPU build
    assert "tensorflow" not in frameworks  # never imported, never read
    assert h == capture(environ={})["hashes"]  # in-process settings do not move the hashes
