"""`python -m sweeplab`: the same entrypoint as the `sweeplab` console script."""

from sweeplab.run import cli

cli()
