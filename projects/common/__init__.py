"""Code shared by the example entry points: determinism set-up, data digests, MLflow logging.

It travels with the project to the worker, so the examples need nothing from repro_mlflow.
"""
