"""a2q.app: the ``a2q`` command and the flows it runs: the engine build, the one-command flow
and its report, and the benchmarks."""
