"""The verdict per example on hand-made tables: repeatable?, reproducible?, classes, spread, factor."""

from repro_mlflow.analysis import pipeline

from .store import frame


def _runs(values: dict[str, list[float]], seeds=(1, 2)) -> list[dict]:
    """environment -> the metric of its repeats (seed adds seed/100)."""
    runs = []
    for seed in seeds:
        for env, vals in values.items():
            for rep, v in enumerate(vals):
                runs.append({"tags": {"mlflow.project.entryPoint": "mnist_convnet", "repro.fp.env": env,
                                      "repro.repeat": rep, "repro.primary_metric": "test_accuracy"},
                             "params": {"seed": seed}, "metrics": {"test_accuracy": v + seed / 100}})
    return runs


def _verdict(runs) -> dict:
    res, _ = pipeline.analyse(frame(runs), pipeline.Options(artifacts=False))
    return res["examples"][0]["verdict"]


def test_all_repeatable_and_reproducible():
    v = _verdict(_runs({"a": [0.9, 0.9], "b": [0.9, 0.9]}))
    assert v["repeatable"] == {"answer": "yes", "groups": 4, "repeatable": 4, "not_repeatable": 0, "single_run": 0,
                               "not_repeatable_in": []}
    assert v["reproducible"]["answer"] == "yes" and v["reproducible"]["reproducible"] == 2
    assert v["classes"] == [{"classes": [["a", "b"]], "n_configs": 2}]
    assert v["spread"]["min"] == 0.91 and v["spread"]["max"] == 0.92
    assert v["factor"]["factor"] == "seed" and v["factor"]["partial_eta_squared"] == 1.0
    assert v["lines"][0] == "repeatable: yes (4 of 4 config x environment groups bit-identical)"


def test_one_environment_not_repeatable():
    v = _verdict(_runs({"a": [0.9, 0.9], "b": [0.9, 0.9], "c": [0.9, 0.95]}))
    r = v["repeatable"]
    assert (r["answer"], r["repeatable"], r["not_repeatable"], r["not_repeatable_in"]) == ("partly", 4, 2, ["c"])
    assert v["reproducible"]["answer"] == "no"
    assert "not in c" in v["lines"][0]


def test_two_equivalence_classes():
    v = _verdict(_runs({"a": [0.9, 0.9], "b": [0.9, 0.9], "c": [0.93, 0.93], "d": [0.93, 0.93]}))
    assert v["repeatable"]["answer"] == "yes"
    assert v["reproducible"] == {"answer": "no", "configs": 2, "reproducible": 0, "not_reproducible": 2,
                                 "single_environment": 0, "n_environments": 4}
    assert v["classes"] == [{"classes": [["a", "b"], ["c", "d"]], "n_configs": 2}]
    assert "classes: a, b | c, d (2 config(s))" in v["lines"]
    assert v["spread"]["range"] == 0.93 + 0.02 - 0.91
    assert v["factor"]["factor"] == "environment"


def test_single_environment_cannot_judge_reproducibility():
    v = _verdict(_runs({"a": [0.9, 0.9, 0.9]}))
    assert v["repeatable"]["answer"] == "yes" and v["reproducible"]["answer"] is None
    assert v["reproducible"]["single_environment"] == 2 and v["classes"] == []
    assert "reproducible across environments: cannot be judged (single environment: a)" in v["lines"]


def test_cost_of_determinism_on_a_hand_made_table():
    runs = []
    for env in ("a", "b"):
        for det, secs in ((True, [20.0, 21.0, 22.0, 20.5]), (False, [10.0, 10.5, 11.0, 10.2])):
            for rep, s in enumerate(secs):
                runs.append({"tags": {"mlflow.project.entryPoint": "mnist_convnet", "repro.fp.env": env,
                                      "repro.repeat": rep, "repro.det.op_determinism": det,
                                      "repro.primary_metric": "test_accuracy", "repro.digest.weights": f"w{det}"},
                             "params": {"op_determinism": det},
                             "metrics": {"test_accuracy": 0.9, "train_seconds": s * (2 if env == "b" else 1)}})
    res, _ = pipeline.analyse(frame(runs), pipeline.Options(artifacts=False, n_boot=500))
    ex = res["examples"][0]
    rows = {c["environment"]: c for c in ex["cost"]}
    assert set(rows) == {"a", "b"}
    a = rows["a"]
    assert (a["factor"], a["deterministic"], a["other"]) == ("op_determinism", "true", "false")
    assert a["median_deterministic"] == 20.75 and a["median_other"] == 10.35
    assert abs(a["ratio"] - 20.75 / 10.35) < 1e-12 and rows["b"]["ratio"] == a["ratio"]
    lo, hi = a["ratio_ci"]
    assert 20.0 / 11.0 <= lo <= a["ratio"] <= hi <= 22.0 / 10.0
    assert any(x.startswith("cost of op_determinism=true (vs false): 2.00x [") for x in ex["verdict"]["lines"])


def _cost_runs(rows):
    runs = []
    for i, (backend, seed, det, det_xla, secs) in enumerate(rows):
        runs.append({"tags": {"mlflow.project.entryPoint": "mnist_convnet", "repro.fp.env": "a", "repro.repeat": i,
                              "repro.det.op_determinism": det, "repro.det.xla": det_xla,
                              "repro.primary_metric": "test_accuracy", "repro.digest.weights": f"w{backend}{seed}{det}"},
                     "params": {"op_determinism": det, "xla": "auto", "keras_backend": backend, "seed": seed},
                     "metrics": {"test_accuracy": 0.9, "train_seconds": secs}})
    return runs


def test_cost_compares_only_runs_whose_other_factors_are_equal():
    # seed 2 trains twice as long either way; op determinism costs 1.5x at each seed. Pooled medians would
    # give 20/12.5 = 1.6; the xla tag differs only with the backend (it was not swept: params.xla = auto).
    rows = [("tensorflow", 1, True, False, 15.0), ("tensorflow", 1, False, False, 10.0),
            ("tensorflow", 2, True, False, 30.0), ("tensorflow", 2, False, False, 20.0),
            ("jax", 1, True, True, 15.0), ("jax", 1, False, True, 10.0)]
    res, _ = pipeline.analyse(frame(_cost_runs(rows)), pipeline.Options(artifacts=False, n_boot=200))
    cost = res["examples"][0]["cost"]
    assert [c["factor"] for c in cost] == ["op_determinism"]
    (c,) = cost
    assert c["strata"] == 3 and c["ratio"] == 1.5 and c["ratio_ci"] is None  # one run a side: no interval


def test_train_seconds_is_not_an_outcome():
    """Two repeats with equal digests and metrics but different train times are repeatable."""
    rows = [("tensorflow", 1, True, False, 15.0), ("tensorflow", 1, True, False, 17.5)]
    runs = _cost_runs(rows)
    runs[1]["tags"]["repro.repeat"] = 1
    res, _ = pipeline.analyse(frame(runs), pipeline.Options(artifacts=False, n_boot=50))
    ex = res["examples"][0]
    assert "metrics.train_seconds" not in ex["outcomes"] and ex["verdict"]["repeatable"]["answer"] == "yes"


def _placebo_runs(det_secs, other_secs):
    """op determinism on and off give the same bits (the same digest) in every run: a placebo."""
    runs = []
    for det, secs in ((True, det_secs), (False, other_secs)):
        for rep, sec in enumerate(secs):
            runs.append({"tags": {"mlflow.project.entryPoint": "imdb_bilstm", "repro.fp.env": "a", "repro.repeat": rep,
                                  "repro.det.op_determinism": det, "repro.primary_metric": "test_accuracy",
                                  "repro.digest.weights": "same"},
                         "params": {"op_determinism": det}, "metrics": {"test_accuracy": 0.8, "train_seconds": sec}})
    return runs


def test_placebo_that_costs_nothing_keeps_its_ci_around_one():
    runs = _placebo_runs([9.5, 10.5, 10.0, 11.0, 9.0, 10.2, 9.8, 10.4], [10.1, 9.6, 10.6, 9.9, 10.3, 9.4, 10.8, 10.0])
    res, _ = pipeline.analyse(frame(runs), pipeline.Options(artifacts=False, n_boot=500))
    (c,) = res["examples"][0]["cost"]
    assert c["strata_changed_bits"] == 0 and c["placebo_ok"] is True and c["reliable"] is True
    lo, hi = c["placebo_ci"]
    assert lo <= 1 <= hi
    assert any(x.startswith("placebo op_determinism=true (vs false): 1.0") for x in res["examples"][0]["verdict"]["lines"])


def test_placebo_that_costs_time_flags_the_timings_unreliable():
    runs = _placebo_runs([20.0, 21.0, 20.5, 22.0, 19.5], [10.0, 10.5, 11.0, 10.2, 9.8])
    res, _ = pipeline.analyse(frame(runs), pipeline.Options(artifacts=False, n_boot=500))
    v = res["examples"][0]["verdict"]
    (c,) = res["examples"][0]["cost"]
    assert c["placebo_ok"] is False and c["reliable"] is False and v["timings_unreliable"]
    assert any(x.startswith("timings unreliable: op_determinism changed no bits yet took 2.0")
               for x in v["lines"])
    assert not any(x.startswith("cost of op_determinism") for x in v["lines"])
