"""Heat-map rows are named by the fewest leading settings that tell the configs apart."""

from repro_mlflow.analysis.plots import _distinct_settings


def test_rows_name_only_the_settings_that_differ():
    configs = ["keras_backend=jax seed=1 threads=1 xla_flags=a torch=None",
               "keras_backend=jax seed=1 threads=2 xla_flags=b torch=None",
               "keras_backend=torch seed=1 threads=1 xla_flags=None torch=1"]
    assert _distinct_settings(configs) == {configs[0]: "keras_backend=jax threads=1",
                                           configs[1]: "keras_backend=jax threads=2",
                                           configs[2]: "keras_backend=torch threads=1"}
    assert _distinct_settings(["seed=1"]) == {"seed=1": "seed=1"}
