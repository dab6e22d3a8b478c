"""What MLflow loads through entry points: the `repro-*` project backends and their SubmittedRun."""
