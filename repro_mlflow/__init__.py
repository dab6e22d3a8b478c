"""repro-mlflow: test ML experiments for irreproducibility across hardware and software."""

__version__ = "0.1.0"
