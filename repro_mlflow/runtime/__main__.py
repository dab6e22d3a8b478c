import atexit
import os
import sys

from .worker import main

rc = main()
# Every MLflow write above is synchronous and done. Tearing down the interpreter's module graph
# (MLflow pulls in pandas, pyarrow, sqlalchemy...) takes about a second, all of it on the run's
# critical path, so run the exit handlers and leave without it.
atexit._run_exitfuncs()
sys.stdout.flush()
sys.stderr.flush()
os._exit(rc)
