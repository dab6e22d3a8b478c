"""Generated campaigns shaped like the published study (examples × software images × CPU/GPU models, one
pilot host per job, 5 repeats, metrics only), whose answer is known by construction. In memory: the
table `load_runs` would return (`store.frame`), built in well under a second."""

from __future__ import annotations

import hashlib

import numpy as np

from .store import frame

N_TEST = {"mnist_convnet": 10_000, "imbalanced_classification": 56_961, "imdb_bilstm": 200}
EXAMPLES = {"mnist_convnet": 0.9920, "imbalanced_classification": 0.9939, "imdb_bilstm": 0.8100}
# image -> TensorFlow version: two images carry the same version (they agree bit for bit)
IMAGES = {"tensorflow/tensorflow:2.8.0-gpu": "2.8.0", "osg-htc/tensorflow:2.8.0": "2.8.0",
          "tensorflow/tensorflow:2.9.1-gpu": "2.9.1", "tensorflow/tensorflow:2.10.0-gpu": "2.10.0",
          "tensorflow/tensorflow:2.11.0-gpu": "2.11.0", "tensorflow/tensorflow:2.12.0-gpu": "2.12.0"}
AVX512 = "fpu,sse2,avx,avx2,fma,avx512f,avx512bw,avx512vl"
AVX2 = "fpu,sse2,avx,avx2,fma"
# CPU model -> (vendor, logical CPUs, flags); the classes of the main campaign follow vendor + count
CPUS = {
    "AMD EPYC 7402 24-Core Processor": ("AuthenticAMD", 96, AVX2),
    "AMD EPYC 7443 24-Core Processor": ("AuthenticAMD", 96, AVX2),
    "AMD EPYC 7513 32-Core Processor": ("AuthenticAMD", 128, AVX2),
    "AMD EPYC 7713 64-Core Processor": ("AuthenticAMD", 128, AVX2),
    "AMD EPYC 7351 16-Core Processor": ("AuthenticAMD", 64, AVX2),
    "Intel(R) Xeon(R) CPU E5-2640 v4 @ 2.40GHz": ("GenuineIntel", 40, AVX2),
    "Intel(R) Xeon(R) CPU E5-2650 v3 @ 2.30GHz": ("GenuineIntel", 40, AVX2),
    "Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz": ("GenuineIntel", 64, AVX512),
    "Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz": ("GenuineIntel", 80, AVX512),
}
EXTRA = "Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz"  # run under the first image only: the 55th environment
CPUS_EXTRA = {EXTRA: ("GenuineIntel", 80, AVX512)}
GPUS = ("Tesla V100-SXM2-32GB", "Quadro RTX 6000", "NVIDIA A100-SXM4-40GB")
SITES = ("UChicago", "MWT2", "SWT2_CPB", "Nebraska", "WSU-GRID", "UCSD", "Purdue-Anvil")


def _h(*parts) -> str:
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()[:12]


def _unit(*parts) -> float:
    """A number in [0, 1) fixed by `parts`."""
    return int(_h(*parts)[:8], 16) / 2**32


def environments(gpus: bool = False) -> list[dict]:
    """55 environments: every CPU model under each image, plus EXTRA under the first; one pilot host each."""
    envs = []
    for i, (image, tf) in enumerate(IMAGES.items()):
        cpus = dict(CPUS, **(CPUS_EXTRA if i == 0 else {}))
        for j, (model, (vendor, count, flags)) in enumerate(cpus.items()):
            site = SITES[(i + j) % len(SITES)]
            host = f"{site.lower()}-c{100 + 7 * i + j}.pilot.example.org"
            hw = {"repro.hw.cpu.model": model, "repro.hw.cpu.vendor": vendor, "repro.hw.cpu.count": count,
                  "repro.hw.cpu.flags": flags}
            if gpus:
                hw["repro.hw.gpu.name"] = GPUS[j % len(GPUS)]
            fp_hw = _h(*sorted(hw.items()))
            fp_sw = _h(image, tf)
            envs.append({**{k: str(v) for k, v in hw.items()}, "repro.software": image, "repro.sw.tensorflow": tf,
                         "repro.site": site, "repro.host": host, "repro.fp.hw": fp_hw, "repro.fp.sw": fp_sw,
                         "repro.fp.env": _h(fp_hw, fp_sw, host)})
    return envs


def class_of(env: dict, rule: str) -> str:
    """What decides the bits in this campaign (by construction)."""
    if rule == "vendor+count":
        return f"{env['repro.hw.cpu.vendor']}-{env['repro.hw.cpu.count']}"
    if rule == "avx512":
        return "avx512" if "avx512f" in env["repro.hw.cpu.flags"] else "avx2"
    if rule == "gpu":
        return env["repro.hw.gpu.name"]
    raise ValueError(rule)


def campaign(rule: str = "vendor+count", repeats: int = 5, examples: dict[str, float] | None = None,
             gpus: bool = False, software_effect: bool = True) -> list[dict]:
    """Runs of examples × environments × repeats: repeatable, each example's metric fixed by (class, TF version)."""
    runs = []
    for ex, base in (examples or EXAMPLES).items():
        for env in environments(gpus or rule == "gpu"):
            cls = class_of(env, rule)
            sw = env["repro.sw.tensorflow"] if software_effect else ""
            acc = round(base - 0.02 * _unit(ex, cls) - 0.01 * _unit(ex, sw), 6)
            loss = 0.05 + _unit(ex, cls, sw) / 10
            for rep in range(repeats):
                runs.append({"tags": {"mlflow.project.entryPoint": ex, "repro.sweep": "osg", "repro.repeat": rep,
                                      "repro.primary_metric": "test_accuracy", **env},
                             "params": {"seed": 1, "epochs": 3, "n_test": N_TEST[ex]},
                             "metrics": {"test_accuracy": acc, "test_loss": loss}})
    return runs


def campaign_frame(**kw):
    return frame(campaign(**kw))


def effects(effect: str, noise_factor: bool = True, seed: int = 0) -> list[dict]:
    """One example over 6 hardware × 4 software environments, 4 repeats, not repeatable (noise 0.002 per run):
    the metric moves with the hardware only, the software only, or both (`effect`); `augment` (swept,
    crossed) moves nothing."""
    rng = np.random.default_rng(seed)
    hw = [f"hw{i}" for i in range(6)]
    sw = [f"img{j}" for j in range(4)]
    hw_eff = dict(zip(hw, [0.0, 0.03, -0.02, 0.01, 0.04, -0.03]))
    sw_eff = dict(zip(sw, [0.0, 0.025, -0.02, 0.015]))
    runs = []
    for h in hw:
        for s in sw:
            for aug in ((0, 1) if noise_factor else (0,)):
                for rep in range(4):
                    v = 0.85 + (hw_eff[h] if effect in ("hardware", "both") else 0) \
                        + (sw_eff[s] if effect in ("software", "both") else 0) + rng.normal(0, 0.002)
                    runs.append({"tags": {"mlflow.project.entryPoint": "imdb_bilstm", "repro.repeat": rep,
                                          "repro.fp.hw": h, "repro.fp.sw": s, "repro.fp.env": f"{h}-{s}",
                                          "repro.software": s, "repro.hw.cpu.model": f"CPU {h}",
                                          "repro.primary_metric": "test_accuracy"},
                                 "params": {"augment": aug, "n_test": 200},
                                 "metrics": {"test_accuracy": float(v)}})
    return runs
