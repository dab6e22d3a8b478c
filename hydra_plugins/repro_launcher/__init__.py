"""Hydra launcher `repro`: a whole multirun becomes MLflow runs submitted as one batch per target.

Hydra imports every module here while discovering plugins, so nothing in this package imports
mlflow or a framework at module level; the work is in `repro_mlflow.sweep`, imported at launch.
"""
