"""Fixtures of the rerun tests: an outside python_env.yaml project and one env cache (from the project-env tests)."""

from tests.api.test_project_env import env_cache, own_project  # noqa: F401 (fixtures, by name)
