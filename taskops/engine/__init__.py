"""The engine: the scheduler (a heap of next fire times), the executor (jobs as process
groups with output files and the termination ladder) and the runner that calls ``run(ctx)``."""
