"""Sweeps: Hydra config -> planned runs (config hash) -> MLflow runs -> one batch per target, with resume and live progress.

Modules: `app` (the `repro-sweep` Hydra app), `schema` (the config's structured configs), `report`
(one-line errors), `overrides` (the sweeper's jobs),
`compose` (every job's config, fast), `plan` (RunSpecs and config hashes), `envs` (software
virtualenvs), `submit` (resume and batch submission), `progress` (live display), `launch` (glue
called by the `hydra/launcher=repro` plugin).
"""
