"""Run stage, orchestration only: one experiment end to end, periodic evaluation, the Table 1 run and the
CLI. The frameworks live in :mod:`harness.frameworks`, where runs execute in :mod:`harness.runners`."""
