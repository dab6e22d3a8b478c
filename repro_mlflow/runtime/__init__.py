"""Worker-side runtime: wraps an entry point command on the machine that runs it.

Only the stdlib and mlflow(-skinny) are imported here; never a framework.
"""
