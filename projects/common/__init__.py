"""Code only the example entry points share: MLflow logging of their metrics and the Keras framework record.

Determinism and evidence come from the public API (`repro_mlflow.determinism`, `repro_mlflow.evidence`),
which any project can use the same way.
"""
