from ..quickexit import end_program
from .worker import main

# Every MLflow write of main() is synchronous and done. Tearing down the interpreter's module graph
# (MLflow pulls in pandas, pyarrow, sqlalchemy...) would be on the run's critical path.
end_program(main())
