"""The package's import graph: no circles, and the discovery path free of heavy imports."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "repro_mlflow"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """repro_mlflow modules imported by `path`, anywhere in it: lazy and TYPE_CHECKING imports count too
    (a circle hidden behind either is still two modules that cannot be read apart)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    base_name = ".".join(base + ([child.module] if child.module else []))
                else:
                    base_name = child.module or ""
                for a in child.names:
                    sub = f"{base_name}.{a.name}"
                    found.add(sub if sub in modules else base_name)
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    files = [p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts]
    modules = {_module_name(p) for p in files}
    return {_module_name(p): _imports(p, modules) for p in files}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := dfs(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := dfs(node)):
            return cycle
    return None


def test_the_checker_finds_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_sees_relative_and_lazy_imports():
    graph = import_graph()
    assert "repro_mlflow.schedulers.protocol" in graph["repro_mlflow.schedulers.slurm.scheduler"]
    assert "repro_mlflow.schedulers.config" in graph["repro_mlflow.schedulers"]  # imported inside get_scheduler


def test_no_import_circles_in_the_package():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("heavy", ["htcondor2", "boto3", "tensorflow", "torch", "jax"])
def test_backends_discovery_imports_no_heavy_package(heavy):
    code = f"import sys, repro_mlflow.schedulers; sys.exit(1 if {heavy!r} in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0, f"import repro_mlflow.schedulers imports {heavy}"



@pytest.mark.parametrize("command", ["status", "sync", "--help"])
def test_status_and_sync_on_a_sqlite_store_never_import_mlflow(command, tmp_path):
    """`repro status` / `repro sync` read a SQL store with SQL (mlflow_sql): they start in a fraction of a
    second because nothing on their path imports MLflow (about 1.5-2.5 s of CPU) until a run must change."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(uri).search_experiments()  # an MLflow store (its tables made here, in the test's process)
    code = ("import sys; from repro_mlflow import cli; sys.argv = ['repro', *sys.argv[1:]]\n"
            "try: cli.main()\nexcept SystemExit: pass\nprint('mlflow' in sys.modules, file=sys.stderr)")
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    out = subprocess.run([sys.executable, "-c", code, command], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert out.stderr.splitlines()[-1] == "False", out.stderr[-2000:]


def test_a_scheduler_rebuilt_for_status_imports_no_mlflow():
    """What `repro status` / `repro sync` do for each live batch (a scheduler made from its record, polled)."""
    code = ("import sys\nfrom repro_mlflow.schedulers import get_scheduler\nfrom repro_mlflow.submit import sync, rebuild\n"
            "get_scheduler('local', {}).poll([])\nsys.exit(1 if 'mlflow' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0

# The layers, bottom first: a module imports only modules of its own layer or of those before it,
# so the tree reads as the data flow (docs/architecture.md) and nothing points back up.
LAYERS = [
    ["repro_mlflow", "repro_mlflow.errors", "repro_mlflow.tags", "repro_mlflow.mlflow_sql", "repro_mlflow.reach",
     "repro_mlflow.quickexit"],
    ["repro_mlflow.fingerprint"],
    ["repro_mlflow.runtime"],
    ["repro_mlflow.affinity", "repro_mlflow.determinism", "repro_mlflow.evidence"],
    ["repro_mlflow.schedulers.staging"],  # the one staging rule: below every scheduler, knows none of them
    ["repro_mlflow.schedulers"],
    ["repro_mlflow.envs"],
    ["repro_mlflow.submit"],
    ["repro_mlflow.mlflow_plugin"],
    ["repro_mlflow.sweep"],
    ["repro_mlflow.analysis"],
    ["repro_mlflow.commands", "repro_mlflow.cli"],
]


def layer_of(module: str) -> int:
    best, rank = -1, -1
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best:
                best, rank = len(p), i
    return rank


def test_every_module_has_a_layer():
    assert [m for m in import_graph() if layer_of(m) <= 0 and m not in LAYERS[0]] == []


def test_no_import_back_up_the_layers():
    graph = import_graph()
    back = sorted(f"{m} -> {d}" for m, deps in graph.items() for d in deps if layer_of(d) > layer_of(m))
    assert back == [], "imports back up: " + "; ".join(back)


def test_the_layer_check_sees_a_back_import():
    assert layer_of("repro_mlflow.schedulers.slurm.scheduler") < layer_of("repro_mlflow.submit.sync")
    assert layer_of("repro_mlflow.submit.batch") > layer_of("repro_mlflow.schedulers")
