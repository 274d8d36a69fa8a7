"""How runs are ranked: one function chooses the metric and direction everywhere."""

import pytest

from sweeplab.model.tasks import TASKS, ranking

REGRESSION, CLASSIFICATION = TASKS["regression"], TASKS["classification"]


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        # A task's own default, in its own sense.
        (dict(metric=None, task=REGRESSION), ("rmse", "minimize")),
        (dict(metric=None, task=CLASSIFICATION), ("accuracy", "maximize")),
        # A metric given keeps its own sense unless a direction is given too.
        (dict(metric="r2", task=REGRESSION), ("r2", "maximize")),
        (dict(metric="r2", direction="minimize", task=REGRESSION), ("r2", "minimize")),
        # A sweep's ranking (its parent's tags) is kept, direction and all...
        (dict(metric=None, earlier=("mae", "maximize"), task=REGRESSION), ("mae", "maximize")),
        # ...but another metric than the sweep's is ranked in that metric's own sense.
        (dict(metric="r2", earlier=("mae", "minimize")), ("r2", "maximize")),
        # Nothing to go by: the fallback, in its own sense.
        (dict(metric=None), ("rmse", "minimize")),
        (dict(metric=None, fallback="accuracy"), ("accuracy", "maximize")),
        # A metric sweeplab does not know is minimized unless told.
        (dict(metric="custom_loss"), ("custom_loss", "minimize")),
    ],
)
def test_the_metric_and_direction_that_rank_runs(arguments, expected):
    assert ranking(**arguments) == expected
