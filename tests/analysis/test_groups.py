"""Configs, environments, repeatability and equivalence classes on hand-made tables."""

import numpy as np
import pytest

from repro_mlflow.analysis import pipeline
from repro_mlflow.errors import ReproError

from .store import frame, study


def run(tags=None, params=None, metrics=None, **kw):
    return {"tags": {"mlflow.project.entryPoint": "ex", **(tags or {})}, "params": params or {},
            "metrics": metrics or {}, **kw}


def test_repeatability_and_classes_of_the_study():
    res, keyed = pipeline.analyse(frame(study()), pipeline.Options(artifacts=False))
    ex = res["examples"][0]
    assert ex["example"] == "mnist_convnet" and ex["n_runs"] == 18
    assert ex["environments"] == ["a", "b", "c"] and ex["n_configs"] == 2
    by = {(g["config"], g["environment"]): g for g in ex["groups"]}
    assert set(by) == {(f"seed={s}", e) for s in (1, 2) for e in "abc"}
    for s in (1, 2):
        assert by[(f"seed={s}", "a")]["repeatable"] is True
        assert by[(f"seed={s}", "b")]["repeatable"] is True
        c = by[(f"seed={s}", "c")]
        assert c["repeatable"] is False and c["n_distinct"] == 2
        vals = np.array([0.91, 0.93, 0.91]) + s / 100
        assert c["range"] == pytest.approx(np.ptp(vals))
        assert c["std"] == pytest.approx(np.std(vals, ddof=1))
    for e in ex["equivalence"]:
        assert e["classes"] == [["a", "b"], ["c"]] and e["reproducible"] is False
    assert ex["summary"] == {"groups": 6, "repeatable": 4, "not_repeatable": 2, "single_run": 0,
                             "configs_reproducible": 0, "configs_not_reproducible": 2, "configs_single_environment": 0}


def test_digest_difference_alone_breaks_repeatability():
    runs = [run({"repro.fp.env": "e", "repro.digest.weights": d}, metrics={"acc": 0.5}) for d in ("x", "x", "y")]
    ex = pipeline.analyse(frame(runs), pipeline.Options(artifacts=False))[0]["examples"][0]
    assert ex["groups"][0]["repeatable"] is False and ex["groups"][0]["range"] == 0.0
    assert "repro.digest.weights" in ex["outcomes"]


def test_one_run_group_is_neither_repeatable_nor_not():
    runs = [run({"repro.fp.env": "a"}, metrics={"acc": 0.5}), run({"repro.fp.env": "a"}, metrics={"acc": 0.5}),
            run({"repro.fp.env": "b"}, metrics={"acc": 0.5})]
    ex = pipeline.analyse(frame(runs), pipeline.Options(artifacts=False))[0]["examples"][0]
    g = {x["environment"]: x for x in ex["groups"]}
    assert g["a"]["repeatable"] is True and g["b"]["repeatable"] is None and g["b"]["std"] is None
    assert ex["summary"]["single_run"] == 1
    assert ex["equivalence"][0]["classes"] == [["a", "b"]] and ex["equivalence"][0]["reproducible"] is True


def test_single_environment_is_reported():
    runs = [run({"repro.fp.env": "only"}, metrics={"acc": v}) for v in (0.1, 0.1)]
    ex = pipeline.analyse(frame(runs), pipeline.Options(artifacts=False))[0]["examples"][0]
    assert ex["equivalence"][0]["reproducible"] is None and ex["equivalence"][0]["note"] == "single environment"
    assert any("single environment" in n for n in ex["notes"])
    assert all(t["statistic"] is None for t in ex["tests"])


def test_missing_metric_runs_are_left_out_and_counted():
    runs = [run({"repro.fp.env": "a"}, metrics={"acc": 0.5, "loss": 1.0}),
            run({"repro.fp.env": "a"}, metrics={"acc": 0.5}),
            run({"repro.fp.env": "a"}, metrics={"loss": 2.0})]
    ex = pipeline.analyse(frame(runs), pipeline.Options(primary="acc", artifacts=False))[0]["examples"][0]
    assert ex["metrics"]["acc"]["n"] == 2 and ex["metrics"]["acc"]["n_missing"] == 1
    assert ex["metrics"]["loss"]["n"] == 2 and ex["metrics"]["loss"]["n_missing"] == 1
    assert any("1 run(s) without acc" in n for n in ex["notes"])
    assert any("loss" in n and "not compared" in n for n in ex["notes"])
    assert ex["groups"][0]["n"] == 2 and ex["groups"][0]["repeatable"] is True


def test_nan_metric_is_missing_not_zero():
    runs = [run({"repro.fp.env": "a"}, metrics={"acc": v}) for v in (0.5, float("nan"), 0.7)]
    ex = pipeline.analyse(frame(runs), pipeline.Options(artifacts=False))[0]["examples"][0]
    assert ex["metrics"]["acc"]["n_missing"] == 1 and ex["metrics"]["acc"]["min"] == 0.5


def test_by_a_param_makes_it_the_environment_not_part_of_the_config():
    runs = [run(params={"threads": t, "seed": 1}, metrics={"acc": 0.5 + (t == 2) * 0.01}) for t in (1, 1, 2, 2)]
    res, keyed = pipeline.analyse(frame(runs), pipeline.Options(by="threads", artifacts=False))
    ex = res["examples"][0]
    assert res["environment_by"] == "params.threads"
    assert ex["environments"] == ["1", "2"] and ex["n_configs"] == 1
    assert ex["equivalence"][0]["classes"] == [["1"], ["2"]]


def test_without_fingerprints_every_run_is_one_unknown_environment():
    runs = [run(params={"lr": lr}, metrics={"acc": a}) for lr, a in ((0.1, 0.5), (0.1, 0.5), (0.2, 0.6))]
    res, _ = pipeline.analyse(frame(runs), pipeline.Options(artifacts=False))
    assert res["examples"][0]["environments"] == ["(unknown)"]
    assert any("--by" in n for n in res["notes"])


def test_repeat_falls_back_to_order_and_statuses_filter():
    runs = [run({"repro.fp.env": "a"}, metrics={"acc": 0.5}), run({"repro.fp.env": "a"}, metrics={"acc": 0.5}),
            run({"repro.fp.env": "a"}, status="FAILED")]
    res, keyed = pipeline.analyse(frame(runs), pipeline.Options(artifacts=False))
    assert sorted(keyed["_repeat"]) == ["0", "1"]
    assert res["excluded_by_status"] == {"FAILED": 1} and res["n_runs"] == 2


def test_bad_input_is_a_repro_error():
    with pytest.raises(ReproError, match="no tag or param named 'nope'"):
        pipeline.analyse(frame(study()), pipeline.Options(by="nope"))
    with pytest.raises(ReproError, match="metric 'nope'"):
        pipeline.analyse(frame(study()), pipeline.Options(metrics=["nope"]))
    with pytest.raises(ReproError, match="none of the 1 selected runs is FINISHED"):
        pipeline.analyse(frame([run(status="FAILED")]), pipeline.Options())


def test_each_example_lists_its_own_metrics_only():
    runs = [run({"repro.fp.env": "a", "mlflow.project.entryPoint": "mnist"}, metrics={"acc": 0.5}),
            run({"repro.fp.env": "a", "mlflow.project.entryPoint": "fraud"}, metrics={"recall": 1.0})]
    res = pipeline.analyse(frame(runs), pipeline.Options(artifacts=False))[0]
    assert {e["example"]: sorted(e["metrics"]) for e in res["examples"]} == {"fraud": ["recall"], "mnist": ["acc"]}
    # a metric asked for by name is reported on every example, as having no value where it has none
    res = pipeline.analyse(frame(runs), pipeline.Options(metrics=["acc"], artifacts=False))[0]
    fraud = next(e for e in res["examples"] if e["example"] == "fraud")
    assert fraud["metrics"]["acc"]["n"] == 0 and "no values" in fraud["metrics"]["acc"]["note"]


def test_by_a_setting_compares_its_values_as_environments():
    # threads recorded three ways, as the examples do: the param, its det tag and a derived thread pool
    runs = [run({"repro.fp.env": "vm", "repro.det.threads": t, "repro.det.tf.intra_op_threads": t,
                 "repro.det.op_determinism": "true"}, params={"threads": t, "seed": s},
                metrics={"acc": 0.9 if t == 1 else (0.8 if s == 1 else 0.9)})
            for t in (1, 2) for s in (1, 2) for _ in range(2)]
    res = pipeline.analyse(frame(runs), pipeline.Options(by="params.threads", artifacts=False))[0]
    ex = res["examples"][0]
    assert ex["environments"] == ["1", "2"] and ex["n_configs"] == 2  # seed 1, seed 2
    classes = {e["config"]: e["classes"] for e in ex["equivalence"]}
    assert classes == {"seed=1": [["1"], ["2"]], "seed=2": [["1", "2"]]}
