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


def test_a_param_is_swept_only_where_runs_of_one_model_differ_in_it():
    from sweeplab.compare.results import Row, swept_params

    def row(**params):
        return Row(status="FINISHED", params={k: str(v) for k, v in params.items()})

    # Two models' own defaults are not a sweep of max_iter.
    two_models = [row(model="logistic_regression", max_iter=1000, C=1),
                  row(model="hist_gradient_boosting", max_iter=100, learning_rate=0.1)]  # fmt: skip
    assert swept_params(two_models) == ["model"]
    varied = [*two_models, row(model="hist_gradient_boosting", max_iter=200, learning_rate=0.1)]
    assert swept_params(varied, ["model=a,b", "model.max_iter=100,200"]) == ["model", "max_iter"]


@pytest.mark.parametrize(
    ("values", "best", "decimals"),
    [
        ([121.56, 121.62, 130.0], 121.56, 2),  # 121.6 twice at 4 digits: one more
        ([121.561, 121.564], 121.561, 3),
        ([121.5, 135.0], 121.5, 1),  # 4 digits tell them apart already
        ([0.91234, 0.5], 0.91234, 4),
    ],
)
def test_heatmap_cells_show_the_digits_that_tell_the_best_from_the_rest(values, best, decimals):
    from sweeplab.compare.results import _telling_decimals

    assert _telling_decimals(values, best) == decimals


def test_a_comparison_across_experiments_fits_a_terminal_and_counts_what_it_ranks():
    from sweeplab.compare.results import Row, compare, grouping_note, leaderboard

    long = "random_forest dataset=table dataset.path=data/customers.csv dataset.target=churned"
    rows = [
        Row(
            "FINISHED",
            f"{i:032x}",
            None,
            {"max_depth": str(d)},
            {"rmse": 120.0 + i},
            run_name=f"{long} {i}",
            experiment="Customers",
            data=digest,
        )
        for i, (d, digest) in enumerate([(3, "a" * 16), (6, "a" * 16), (9, "b" * 16)])
    ] + [Row("FAILED", "f" * 32, None, {"max_depth": "12"}, {}, run_name=long, data="c" * 16)]
    comparison = compare(rows, "rmse", "minimize", across_sweeps=True)
    lines = leaderboard(comparison).splitlines()
    assert max(map(len, lines)) <= 150
    assert "..." in lines[1]  # the run's name, cut; comparison.csv keeps it whole
    assert comparison.table["run"].str.len().max() > 80
    # Two groups are ranked (a failed run's third digest is ranked in none).
    assert grouping_note(comparison).startswith("the ranked runs are on 2 different datasets")


def test_swept_keys_have_short_forms_that_tell_runs_apart_in_20_characters():
    from sweeplab.run.plan import names, short_forms

    assert short_forms(["model.max_depth", "model.n_estimators", "model.alpha", "model"]) == {
        "model.max_depth": "md", "model.n_estimators": "ne", "model.alpha": "alpha"
    }  # fmt: skip
    # Short forms that would clash keep their names.
    assert short_forms(["model.max_depth", "model.min_depth"]) == {
        "model.max_depth": "max_depth", "model.min_depth": "min_depth"
    }  # fmt: skip
    swept = ["model.max_depth", "model.n_estimators"]
    first = names("random_forest", ["model.max_depth=9", "model.n_estimators=100"], swept)
    second = names("random_forest", ["model.max_depth=9", "model.n_estimators=200"], swept)
    assert first[0] == "md=9 ne=100" and first[0][:20] != second[0][:20]
    assert first[1] == "random_forest-max_depth=9-n_estimators=100"  # the model: full keys


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_of_groups_of_one_size_the_best_is_the_better_groups_best(direction):
    from sweeplab.compare.results import Row, compare

    # Two files, one run each: both rank 1 in their group; the comparison's best is the better.
    rows = [
        Row("FINISHED", f"{i:032x}", i, {"path": path}, {"rmse": score}, data=path * 16)
        for i, (path, score) in enumerate([("a", 18.5), ("b", 17.3)])
    ]
    best = compare(rows, "rmse", direction).best
    assert best is not None
    assert best["rmse"] == (17.3 if direction == "minimize" else 18.5)
