"""`sweeplab-tools`: the commands besides a run."""
