"""Real services started by tests and benchmarks: a one-node Slurm cluster, a one-machine HTCondor pool, an `mlflow server`."""

import socket


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (tests run in parallel sessions; never hard-code ports)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
