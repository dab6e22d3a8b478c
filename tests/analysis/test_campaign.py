"""`repro analyze` at the scale of a real campaign (tests/analysis/campaign.py: 3 examples × 6 software images
× 10 CPU models, 55 environments on pilot hosts, 5 repeats), whose answer is known by construction."""

import io

import numpy as np
import pytest
from rich.console import Console

from repro_mlflow.analysis import pipeline, report

from .campaign import campaign_frame, class_of, effects, environments
from .store import frame


def _analyse(df):
    res, _ = pipeline.analyse(df, pipeline.Options(artifacts=False))
    return res


@pytest.fixture(scope="module")
def study():
    return _analyse(campaign_frame())


def _printed(res, wide=False) -> list[str]:
    buf = io.StringIO()
    report.print_summary(res, Console(file=buf, width=100, soft_wrap=True), wide=wide)
    return buf.getvalue().splitlines()


def test_the_answer_fits_40_lines_at_100_columns_and_names_no_pilot_host(study):
    envs = environments()
    assert len({e["repro.fp.env"] for e in envs}) == 55
    out = _printed(study)
    assert len(out) <= 40 and max(map(len, out)) <= 100, out
    text = "\n".join(out)
    for e in envs:
        assert e["repro.host"] not in text and e["repro.site"] not in text
    for ex in study["examples"]:
        assert ex["n_environments"] == 55 and ex["n_runs"] == 275
        assert "classes follow CPU vendor + logical CPU count" in ex["verdict"]["lines"]
        assert ("classes: 10 CPU models in 6 classes, the same partition under all 6 software images"
                in ex["verdict"]["lines"])
    # the full listing stays one flag away: --wide prints the legend, pilot hosts included
    wide = "\n".join(_printed(study, wide=True))
    assert envs[0]["repro.host"] in wide and len(wide.splitlines()) > 100


def test_labels_within_a_config_name_cpu_model_and_image_never_the_host(study):
    ex = study["examples"][0]
    (eq,) = ex["equivalence"]
    labels = [x for c in eq["class_labels"] for x in c]
    assert len(set(labels)) == 55
    assert "AMD EPYC 7443; osg-htc/tensorflow:2.8.0" in labels  # two images carry TF 2.8.0: the image tells them apart
    assert not any("pilot.example.org" in x or "@" in x for x in labels)


def test_statistics_count_independent_outcomes_and_set_the_spread_against_test_set_noise(study):
    by = {ex["example"]: ex for ex in study["examples"]}
    m = by["imdb_bilstm"]["metrics"]["test_accuracy"]
    assert (m["n"], m["n_independent"]) == (275, 55)  # 5 bit-identical repeats are one outcome
    n_imdb, n_mnist = by["imdb_bilstm"]["noise"], by["mnist_convnet"]["noise"]
    assert n_imdb["n_test"] == 200 and n_imdb["within"] is True  # 200 reviews: SE 0.028, above the spread
    assert n_mnist["n_test"] == 10_000 and n_mnist["within"] is False
    assert any(x.endswith(", within it") for x in by["imdb_bilstm"]["verdict"]["lines"])


@pytest.mark.parametrize("rule,follows", [("avx512", ["AVX-512"]), ("gpu", ["GPU model"])])
def test_classes_that_follow_avx512_or_the_gpu_model_are_explained_so(rule, follows):
    res = _analyse(campaign_frame(rule=rule, examples={"mnist_convnet": 0.99}, repeats=2))
    s = res["examples"][0]["explanation"]["summary"]
    assert s["follows"] == follows and s["exact_in"] == s["split"] == 6 and s["same_partition"]
    assert f"classes follow {follows[0]}" in res["examples"][0]["verdict"]["lines"]


def _terms(res) -> dict:
    return {t["term"]: t for t in res["examples"][0]["variance"]["terms"]}


@pytest.mark.parametrize("effect,big,small", [("hardware", "hardware", "software"),
                                              ("software", "software", "hardware")])
def test_hardware_only_and_software_only_effects_get_their_shares(effect, big, small):
    t = _terms(_analyse(frame(effects(effect))))
    assert t[big]["share"] > 0.9 and t[big]["omega_ci"][0] > 0.9
    assert t[small]["share"] < 0.01 and t[small]["omega_ci"][0] <= 0 <= t[small]["omega_ci"][1] + 1e-9
    # the swept factor that moves nothing: about 0, its interval including 0
    assert abs(t["augment"]["partial_omega_squared"]) < 0.05
    assert t["augment"]["omega_ci"][0] <= 0 <= t["augment"]["omega_ci"][1]


def test_both_effects_share_the_variance():
    t = _terms(_analyse(frame(effects("both"))))
    assert t["hardware"]["share"] > 0.3 and t["software"]["share"] > 0.2
    assert t["hardware"]["share"] + t["software"]["share"] == pytest.approx(1, abs=0.02)


def test_aliased_factors_are_named_together_and_a_confounded_one_gets_no_share():
    runs = []
    for backend in ("tensorflow", "jax"):
        for seed in (1, 2, 3):
            for rep in range(3):
                runs.append({"tags": {"mlflow.project.entryPoint": "mnist_convnet", "repro.fp.env": "e",
                                      "repro.repeat": rep, "repro.primary_metric": "test_accuracy",
                                      "repro.det.xla": backend == "jax"},  # moves with the backend
                             "params": {"keras_backend": backend, "seed": seed,
                                        "onednn": seed != 1},  # false only with seed 1
                             "metrics": {"test_accuracy": 0.9 + 0.01 * seed + (0.02 if backend == "jax" else 0)
                                         + 0.001 * rep}})
    res = _analyse(frame(runs))
    var = res["examples"][0]["variance"]
    t = _terms(res)
    assert "keras_backend = xla" in t and t["keras_backend = xla"]["aliased"]
    assert [c["term"] for c in var["confounded"]] == ["onednn"] and "seed" in var["confounded"][0]["with"]
    assert "onednn" not in t
    assert any(x.startswith("confounded, no share: onednn (with seed") for x in res["examples"][0]["verdict"]["lines"])


def test_adjusted_rand_index_known_values():
    from repro_mlflow.analysis.explain import ari

    assert ari("aabbc", "xxyyz") == 1.0  # the same partition, other names
    assert ari([1, 1, 2, 2], [1, 2, 1, 2]) == pytest.approx(-0.5)
    assert ari("aabbcc", "aabbbc") == pytest.approx((2 - 0.8) / 2.7)  # by hand from the contingency table


def test_a_factor_named_with_factor_is_a_term_of_the_model():
    runs = effects("hardware")
    for r in runs:
        r["tags"]["batch"] = "b" + str(r["tags"]["repro.repeat"] % 2)  # a tag nobody swept: noise only
    res, _ = pipeline.analyse(frame(runs), pipeline.Options(artifacts=False, factors=["batch"]))
    t = _terms(res)
    assert t["batch"]["columns"] == ["tags.batch"] and t["batch"]["share"] < 0.01


def _interacting(with_interaction: bool = True, seed: int = 0) -> list[dict]:
    """6 hardware × 3 seeds, 4 non-repeatable repeats (noise 0.002): the hardware moves the metric, and the
    seed moves it differently on each hardware (by construction: a hardware x seed interaction)."""
    rng = np.random.default_rng(seed)
    hw_eff = [0.0, 0.03, -0.02, 0.01, 0.04, -0.03]
    runs = []
    for h, he in enumerate(hw_eff):
        for s in (1, 2, 3):
            ie = 0.02 * (((h * 7 + s * 3) % 5) - 2) if with_interaction else 0.0
            for rep in range(4):
                runs.append({"tags": {"mlflow.project.entryPoint": "imdb_bilstm", "repro.repeat": rep,
                                      "repro.fp.hw": f"hw{h}", "repro.fp.sw": "img", "repro.fp.env": f"hw{h}",
                                      "repro.hw.cpu.model": f"CPU {h}", "repro.primary_metric": "test_accuracy"},
                             "params": {"seed": s, "n_test": 200},
                             "metrics": {"test_accuracy": float(0.85 + he + ie + rng.normal(0, 0.002))}})
    return runs


def test_a_hardware_by_seed_interaction_is_a_term_of_its_own():
    res = _analyse(frame(_interacting()))
    var = res["examples"][0]["variance"]
    t = _terms(res)
    assert var["interactions"]["fitted"] == ["hardware x seed"]
    inter = t["hardware x seed"]
    assert inter["interaction"] and inter["df"] == 10 and inter["omega_ci"][0] > 0.5
    # fitted, the interaction leaves only the noise in the residual: the hardware's partial omega² is not lowered
    assert t["hardware"]["partial_omega_squared"] > 0.95 and var["residual_share"] < 0.01
    assert any(x.startswith("variance (with interactions, type-II SS): ") for x in res["examples"][0]["verdict"]["lines"])
    # without one in the data, the interaction term is about 0 with its interval including 0
    t0 = _terms(_analyse(frame(_interacting(with_interaction=False))))
    assert abs(t0["hardware x seed"]["partial_omega_squared"]) < 0.05
    assert t0["hardware x seed"]["omega_ci"][0] <= 0 <= t0["hardware x seed"]["omega_ci"][1]


def test_without_replication_no_interaction_is_fitted(study):
    # repeatable runs of a full factorial: each cell of hardware x software x augment has one outcome, so the
    # residual is the interactions themselves: none is fitted
    runs = effects("hardware")
    for r in runs:
        t = r["tags"]
        r["metrics"]["test_accuracy"] = 0.85 + 0.01 * int(t["repro.fp.hw"][2:]) + 0.003 * int(t["repro.fp.sw"][3:]) \
            + 0.001 * ((int(t["repro.fp.hw"][2:]) * r["params"]["augment"]) % 3)
    var = _analyse(frame(runs))["examples"][0]["variance"]
    assert var["n_independent"] == 48 and var["interactions"]["fitted"] == []
    assert "one outcome" in var["interactions"]["note"] and not any(t["interaction"] for t in var["terms"])
    # the 55-environment campaign: hardware and software not crossed (the 55th environment), no interaction either
    var = study["examples"][0]["variance"]
    assert var["interactions"] == {"fitted": [], "note": "no crossed pair of terms"}


def test_repro_analyze_prints_the_campaign_answer_in_40_lines_whatever_the_terminal(tmp_path, capsys, monkeypatch):
    # the command itself, on the campaign as an earlier report's runs.csv, at 100 columns and at 40: the same lines
    from repro_mlflow.cli import main

    monkeypatch.chdir(tmp_path)  # relative paths: the printed lines do not depend on where the test runs
    campaign_frame().to_csv("runs.csv", index=False)
    printed = []
    for columns in ("100", "40"):
        monkeypatch.setenv("COLUMNS", columns)
        assert main(["analyze", "--store", "runs.csv", "--no-log", "--no-figures", "--out", "out"]) == 0
        printed.append(capsys.readouterr().out.splitlines())
    out = printed[0]
    assert out == printed[1]
    assert len(out) <= 40 and max(map(len, out)) <= 200, out
    text = "\n".join(out)
    assert text.count("classes follow CPU vendor + logical CPU count") == 3
    for e in environments():
        assert e["repro.host"] not in text and e["repro.site"] not in text


def test_the_report_leads_with_the_answer_then_the_partition_picture():
    from html import escape

    df = campaign_frame(examples={"imdb_bilstm": 0.81}, repeats=1)
    res, keyed = pipeline.analyse(df, pipeline.Options(artifacts=False))
    figs = report.make_figures(res, keyed)
    page = report.render_html(res, figs, "campaign")
    (ex,) = res["examples"]
    verdict = page[page.index('<section id="verdict">'):page.index("</section>")]
    assert page.index('<section id="verdict">') < page.index("<h2>imdb_bilstm</h2>")  # the answer first
    for line in ex["verdict"]["lines"]:  # the same lines as the terminal
        assert f"<li>{escape(line)}</li>" in verdict
    # then, right after the spread, the partition as a picture: hardware x software image, coloured by class
    assert page.index("<h3>Spread</h3>") < page.index("<h3>Equivalence classes by hardware</h3>") < page.index(
        "<h3>Heat map</h3>")
    name, image = figs["imdb_bilstm"]["partition"]
    assert name == "partition_imdb_bilstm.svg" and image.startswith(b"<svg")
    assert 'id="partition-imdb_bilstm"' in page and "data:image/svg+xml;base64," in page
    # what it draws: under each of the 6 images the hardware split by CPU vendor + logical CPU count
    by_hw = {e["repro.fp.hw"]: class_of(e, "vendor+count") for e in environments()}
    scopes = [s for s in ex["explanation"]["scopes"] if s["n_classes"] > 1]
    assert len(scopes) == 6
    for s in scopes:
        assert all(len({by_hw[h] for h in c}) == 1 for c in s["partition"])
        assert len(s["partition"]) == len({by_hw[h] for c in s["partition"] for h in c})
