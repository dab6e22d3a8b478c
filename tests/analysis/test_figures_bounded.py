"""The report's figures stay bounded: a 500-environment campaign draws as many figures as a 5-environment
one, none larger than a screenful or so, and the report says what each figure left out."""

import struct

import pytest

from repro_mlflow.analysis import pipeline, plots, report

from .campaign import _h, _unit
from .store import frame

CPU_CLASSES = ("AMD EPYC 7402", "AMD EPYC 7713", "Intel Xeon Gold 6130", "Intel Xeon E5-2640 v4")


def wide_campaign(n_envs: int) -> list[dict]:
    """One example, 2 configs (seeds) × n_envs environments (one host each, 4 CPU classes) × 2 repeats:
    repeatable, the metric fixed by (seed, CPU class)."""
    runs = []
    for i in range(n_envs):
        model = CPU_CLASSES[i % len(CPU_CLASSES)]
        hw = {"repro.hw.cpu.model": f"{model} rev{i}", "repro.hw.cpu.vendor": model.split()[0], "repro.fp.hw": _h("hw", i)}
        env = {**hw, "repro.fp.sw": "sw", "repro.software": "img", "repro.host": f"h{i}.example.org",
               "repro.fp.env": _h("env", i)}
        for seed in (1, 2):
            acc = round(0.9 + 0.05 * _unit(seed, i % len(CPU_CLASSES)), 6)
            for rep in range(2):
                runs.append({"tags": {"mlflow.project.entryPoint": "mnist_convnet", "repro.repeat": rep,
                                      "repro.primary_metric": "test_accuracy", **env},
                             "params": {"seed": seed, "n_test": 10_000},
                             "metrics": {"test_accuracy": acc}})
    return runs


def _figures(n_envs: int):
    result, keyed = pipeline.analyse(frame(wide_campaign(n_envs)), pipeline.Options(artifacts=False, n_boot=50))
    return result, report.make_figures(result, keyed)


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", png[16:24])


@pytest.fixture(scope="module")
def small_and_large():
    return _figures(5), _figures(500)


def test_500_environments_draw_as_many_bounded_figures_as_5(small_and_large):
    (small_res, small), (large_res, large) = small_and_large
    assert large_res["examples"][0]["n_environments"] == 500
    pngs = {k for k, (name, _) in small["mnist_convnet"].items() if name.endswith(".png")}
    large_pngs = {k for k, (name, _) in large["mnist_convnet"].items() if name.endswith(".png")}
    assert pngs == large_pngs and {"heatmap", "strip", "equivalence"} <= pngs
    for kind in large_pngs:
        w, h = _png_size(large["mnist_convnet"][kind][1])
        assert w <= 3000 and h <= 3000, (kind, w, h)


def test_what_a_cut_figure_left_out_is_said_and_kept(small_and_large):
    (small_res, small), (large_res, large) = small_and_large
    assert not any("shows" in n for n in small_res["examples"][0]["notes"])
    notes = " | ".join(large_res["examples"][0]["notes"])
    assert f"strip plot shows the {plots.MAX_ENVS} environments with the widest range ({500 - plots.MAX_ENVS} more" in notes
    assert f"equivalence matrix shows the first {plots.MAX_ENVS} environments ({500 - plots.MAX_ENVS} more)" in notes
    assert f"heat map shows the {plots.MAX_ROWS} config·environment rows" in notes
    name, table = large["mnist_convnet"]["equivalence_table"]
    assert name.endswith(".csv") and len(table.decode().splitlines()) == 501  # header + every environment
    assert "equivalence_table" not in small["mnist_convnet"]
