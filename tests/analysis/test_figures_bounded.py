"""The report's figures stay bounded: a 500-environment campaign draws as many figures as a 5-environment
one, none larger than a screenful or so, and the report says what each figure left out."""

import re
import xml.etree.ElementTree as ET

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


def _svg_size(image: bytes) -> tuple[int, int]:
    root = ET.fromstring(image)  # well-formed SVG, as a browser parses it
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return int(root.get("width")), int(root.get("height"))


def _cells(image: bytes) -> int:
    return len(re.findall(rb"<rect ", image))


@pytest.fixture(scope="module")
def small_and_large():
    return _figures(5), _figures(500)


def test_500_environments_draw_as_many_bounded_figures_as_5(small_and_large):
    (small_res, small), (large_res, large) = small_and_large
    assert large_res["examples"][0]["n_environments"] == 500
    svgs = {k for k, (name, _) in small["mnist_convnet"].items() if name.endswith(".svg")}
    large_svgs = {k for k, (name, _) in large["mnist_convnet"].items() if name.endswith(".svg")}
    assert svgs == large_svgs and {"heatmap", "strip", "equivalence"} <= svgs
    for kind in large_svgs:
        image = large["mnist_convnet"][kind][1]
        w, h = _svg_size(image)
        assert w <= 3000 and h <= 3000, (kind, w, h)
        assert len(image) < 400_000 and _cells(image) <= 2000, (kind, len(image))  # drawing cost bounded too
    # the 5-environment matrix: 5 x 5 cells, each with its share written in it
    small_eq = small["mnist_convnet"]["equivalence"][1]
    assert small_eq.count(b">1.00</text>") >= 5
    large_eq = large["mnist_convnet"]["equivalence"][1]
    assert _cells(large_eq) == plots.MAX_ENVS ** 2 + 3  # cells, background, frame, colour bar


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


def test_a_strip_plot_draws_at_most_max_points_per_environment_and_its_box_over_every_run():
    import numpy as np
    import pandas as pd

    # two environments: 5,000 runs of 300 distinct values, and 50 runs (all drawn)
    many = np.repeat(np.linspace(0.90, 0.99, 300), 17)[:5000]
    runs = pd.DataFrame({"_env": ["big"] * len(many) + ["small"] * 50,
                         "m": np.concatenate([many, np.full(50, 0.95)])})
    image, dropped = plots.strip_box(runs, "m", "t")
    circles = ET.fromstring(image).findall(".//{http://www.w3.org/2000/svg}circle")
    assert dropped == 0
    assert len(circles) == plots.MAX_POINTS + 50
    # the drawn points of the big environment still span its whole range
    ys = sorted(float(c.get("cy")) for c in circles)
    assert len(set(ys)) > 100
