"""Bayesian sweeps with `hydra/sweeper=optuna`: real Optuna studies beside real sqlite stores."""

import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest
import yaml
from test_sweep import parent_csv, store, sweep_runs

from conftest import BIN, copy_of_store, need_extra, sweeplab, sweeplab_process, sweeplab_tools
from sweeplab.util.redact import redact_uri

# One worker runs them all (--dist loadgroup): they share its module's studies.
pytestmark = pytest.mark.xdist_group("optuna")

TRIAL_TAG = "sweeplab.optuna.trial"
# Ridge fits in milliseconds: a trial costs what sweeplab and Optuna add to it.
RIDGE = ("model=ridge", "model.alpha=tag(log, interval(0.01, 100))")


@pytest.fixture(autouse=True)
def _optuna_installed():
    need_extra("optuna")


def optuna_sweep(*args: str, cwd: Path, trials: int, timeout: float = 300):
    # In this process, joblib's too: the sweep's process prints every job's line.
    return sweeplab(
        "-m", "hydra/sweeper=optuna", f"hydra.sweeper.n_trials={trials}", *args,
        cwd=cwd, timeout=timeout,
    )  # fmt: skip


def study_of(root: Path):
    """The one study kept beside the sweep's sqlite store."""
    import optuna

    storage = f"sqlite:///{root}/outputs/mlflow.optuna.db"
    (summary,) = optuna.get_all_study_summaries(storage)
    return optuna.load_study(study_name=summary.study_name, storage=storage)


@pytest.fixture(scope="session")
def tpe(tmp_path_factory, migrated_store):
    """One 6-trial TPE sweep over ridge's alpha and fit_intercept, basic launcher.

    4 random startup trials instead of TPE's 10, so that the last 2 are TPE's own.
    """
    root = tmp_path_factory.mktemp("tpe")
    copy_of_store(migrated_store, root / "outputs" / "mlflow.db")
    done = optuna_sweep(*RIDGE, "model.fit_intercept=choice(true,false)",
                        "hydra.sweeper.sampler.n_startup_trials=4", cwd=root, trials=6)  # fmt: skip
    return root, done


def test_each_trial_is_one_child_run_tagged_with_its_trial_number(tpe):
    root, done = tpe
    assert done.returncode == 0, done.stderr
    parent, children = sweep_runs(store(root))
    assert parent.info.status == "FINISHED"
    assert parent.info.run_name == "ridge · alpha x fit_intercept (fi): 6 trials"
    assert sorted(int(c.data.tags[TRIAL_TAG]) for c in children) == list(range(6))
    # Each trial is a complete run, as a grid's job is.
    for child in children:
        assert child.info.status == "FINISHED"
        assert set(child.data.metrics) >= {"mae", "mse", "rmse", "r2"}
        assert child.outputs.model_outputs
        assert child.inputs.dataset_inputs
    # Child names carry the suggested values, floats to 6 significant digits.
    assert all(c.info.run_name.startswith("alpha=") and " fi=" in c.info.run_name for c in children)
    alphas = [c.data.params["alpha"] for c in children]
    assert all(len(a.lstrip("0.").replace(".", "").partition("e")[0]) <= 6 for a in alphas)


def test_the_study_is_told_each_runs_metric_and_lives_beside_the_store(tpe):
    root, _ = tpe
    parent, children = sweep_runs(store(root))
    study = study_of(root)
    assert parent.data.tags["sweeplab.optuna.study"] == study.study_name
    assert parent.data.tags["sweeplab.optuna.sampler"] == "TPESampler"
    assert study.direction.name == "MINIMIZE"
    by_run = {c.info.run_id: c for c in children}
    assert len(study.trials) == 6
    for trial in study.trials:
        assert trial.state.name == "COMPLETE"
        run = by_run[trial.user_attrs["sweeplab.run_id"]]
        assert int(run.data.tags[TRIAL_TAG]) == trial.number
        assert trial.value == pytest.approx(run.data.metrics["rmse"])
    # Optuna's own schema never goes into MLflow's file.
    with sqlite3.connect(root / "outputs" / "mlflow.db") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert "trials" not in tables and "studies" not in tables


def test_the_parent_has_the_grids_comparison_and_optunas_plots(tpe, tmp_path):
    root, done = tpe
    client = store(root)
    parent, children = sweep_runs(client)
    best = min(children, key=lambda c: c.data.metrics["rmse"])
    assert parent.data.tags["best_run_id"] == best.info.run_id
    assert parent.data.metrics["best_rmse"] == pytest.approx(best.data.metrics["rmse"])
    rows = parent_csv(client, parent, tmp_path)
    assert len(rows) == 6 and rows[0]["run_id"] == best.info.run_id
    optuna_files = {f.path for f in client.list_artifacts(parent.info.run_id, "optuna")}
    assert optuna_files == {
        "optuna/optimization_history.png",
        "optuna/param_importances.png",
        "optuna/optimization_results.yaml",
    }
    results = yaml.safe_load(
        Path(client.download_artifacts(parent.info.run_id, "optuna/optimization_results.yaml",
                                       tmp_path)).read_text()
    )  # fmt: skip
    assert results["best_value"] == pytest.approx(best.data.metrics["rmse"])
    assert results["best_run_id"] == best.info.run_id
    assert results["best_params"]["model.fit_intercept"] in (True, False, "true", "false")
    # Where Hydra's own Optuna plugin writes it too.
    (written,) = (root / "outputs" / "multirun").glob(f"*/*/{'optimization_results.yaml'}")
    assert yaml.safe_load(written.read_text())["best_run_id"] == best.info.run_id
    # The summary counts the trials by outcome; progress lines count to 6.
    assert "optuna   6 trials: 6 finished, 0 pruned, 0 failed;" in done.stdout
    # Each trial's own line, not Hydra's launcher lines for each batch of one.
    assert "Launching" not in done.stdout + done.stderr
    assert "[6/6]" in done.stdout
    assert "Warning" not in done.stdout + done.stderr
    # Hydra's launch lines show the trial's values, not sweeplab's bookkeeping.
    assert "env_set" not in done.stdout + done.stderr


def test_compare_works_on_an_optuna_sweeps_parent(tpe):
    root, _ = tpe
    parent, children = sweep_runs(store(root))
    done = sweeplab_tools("compare", parent.info.run_id, cwd=root)
    assert done.returncode == 0, done.stderr
    assert "6 finished, 0 failed" in done.stdout
    best = min(children, key=lambda c: c.data.metrics["rmse"])
    assert f"run {best.info.run_id}" in done.stdout


def test_parallel_trials_run_through_joblib_in_batches(tmp_path):
    # With folds and a pruner, the jobs in joblib's worker processes report each fold to
    # the study (a pruner that waits for 4 complete trials prunes none of these).
    done = optuna_sweep(
        *RIDGE, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.sweeper.n_jobs=2",
        "split=kfold", "split.k=3", "hydra/sweeper/pruner=median",
        "hydra.sweeper.pruner.n_startup_trials=4", cwd=tmp_path, trials=4,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    _, children = sweep_runs(store(tmp_path))
    assert sorted(int(c.data.tags[TRIAL_TAG]) for c in children) == list(range(4))
    study = study_of(tmp_path)
    trials = sorted(study.trials, key=lambda t: t.number)
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4
    assert all(sorted(t.intermediate_values) == [0, 1, 2] for t in trials)
    # Two trials were asked before either was told: each batch was in flight together.
    for first, second in zip(trials[::2], trials[1::2], strict=True):
        assert second.datetime_start < first.datetime_complete
    assert len({t.params["model.alpha"] for t in trials}) == 4


def test_a_pruner_stops_hopeless_trials_between_folds_and_they_stay_pruned_runs(tmp_path):
    done = optuna_sweep(
        "model=ridge", "model.alpha=tag(log, interval(0.001, 100000))", "split=kfold",
        "split.k=5", "hydra/sweeper/sampler=random", "hydra/sweeper/pruner=median",
        "hydra.sweeper.pruner.n_startup_trials=3", cwd=tmp_path, trials=8,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr  # pruned is not failed
    study = study_of(tmp_path)
    pruned = {t.number: t for t in study.trials if t.state.name == "PRUNED"}
    complete = {t.number: t for t in study.trials if t.state.name == "COMPLETE"}
    assert pruned and len(pruned) + len(complete) == 8
    assert f"8 trials: {len(complete)} finished, {len(pruned)} pruned, 0 failed" in done.stdout
    client = store(tmp_path)
    parent, children = sweep_runs(client)
    for child in children:
        trial = int(child.data.tags[TRIAL_TAG])
        folds = client.get_metric_history(child.info.run_id, "rmse_fold")
        reported = study.trials[trial].intermediate_values
        # The study heard each fold the run logged, as the run logged it.
        assert {m.step: m.value for m in folds} == pytest.approx(reported)
        if trial in pruned:
            assert child.info.status == "KILLED"
            assert child.data.tags["sweeplab.pruned"] == f"after {len(folds)} of 5 folds"
            assert len(folds) < 5 and "rmse" not in child.data.metrics  # never ranked
        else:
            assert child.info.status == "FINISHED" and len(folds) == 5
    rows = parent_csv(client, parent, tmp_path)
    assert sorted(r["job"] for r in rows if r["status"] == "PRUNED") == sorted(
        c.data.tags["sweeplab.sweep.job"] for c in children if c.info.status == "KILLED"
    )


@pytest.mark.process
def test_an_interrupted_study_resumes_to_its_total(tmp_path):
    command = [str(BIN / "sweeplab"), "-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=8",
               *RIDGE]  # fmt: skip
    with subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, text=True) as first:
        assert first.stdout is not None
        for line in first.stdout:
            # Early, so that the signal lands while trials remain however busy the machine is
            # (the lines come as jobs are logged, in the background, while later ones train).
            if line.startswith("[1/8]"):
                break
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    assert first.returncode == 143
    study = study_of(tmp_path)
    completed = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert 1 <= len(completed) < 8
    # Nothing is left RUNNING: the trial in flight is failed as interrupted.
    assert all(t.state.name in ("COMPLETE", "FAIL") for t in study.trials)
    assert all(t.user_attrs.get("sweeplab.interrupted") for t in study.trials
               if t.state.name == "FAIL")  # fmt: skip

    again = sweeplab(*command[1:], cwd=tmp_path, timeout=300)
    assert again.returncode == 0, again.stderr
    study = study_of(tmp_path)
    assert sum(t.state.name == "COMPLETE" for t in study.trials) == 8
    assert f"optuna   {8 - len(completed)} trial" in again.stdout
    assert "8 of 8 in all" in again.stdout
    # The resumed sweep's parent covers the whole study: its name, its table (and plots).
    client = store(tmp_path)
    experiment = client.get_experiment_by_name("Apple_Models").experiment_id
    parents = [r for r in client.search_runs([experiment])
               if r.data.tags.get("sweeplab.sweep") == "true"]  # fmt: skip
    newest = max(parents, key=lambda r: r.info.start_time)
    assert ": 8 trials" in newest.info.run_name
    rows = parent_csv(client, newest, tmp_path)
    assert sum(r["status"] == "FINISHED" for r in rows) == 8
    assert sum("an earlier run of this study" in r["note"] for r in rows) == len(completed)
    # The same command once the study is complete runs nothing, and says so.
    done = sweeplab(*command[1:], cwd=tmp_path, timeout=120)
    assert done.returncode == 0
    assert "already has 8 trials (hydra.sweeper.n_trials=8): nothing to run" in done.stdout
    runs = store(tmp_path).search_runs(
        [store(tmp_path).get_experiment_by_name("Apple_Models").experiment_id]
    )
    assert not [r for r in runs if r.info.status == "RUNNING"]


def test_a_trial_that_raises_fails_while_the_others_finish(tmp_path):
    # An out-of-bag score without bootstrap passes validation, then scikit-learn raises in fit.
    done = optuna_sweep(
        "hydra/sweeper/sampler=grid", "model.n_estimators=choice(10,20)",
        "model.oob_score=choice(false,true)", "model.bootstrap=false",
        "hydra.sweeper.max_failure_rate=0.5", cwd=tmp_path, trials=10,
    )  # fmt: skip
    assert done.returncode == 1
    study = study_of(tmp_path)
    # The grid has 4 points: n_trials=10 shrinks to them.
    states = {(t.params["model.oob_score"], t.state.name) for t in study.trials}
    assert len(study.trials) == 4
    assert states == {(False, "COMPLETE"), (True, "FAIL")}
    _, children = sweep_runs(store(tmp_path))
    assert sorted(c.info.status for c in children) == ["FAILED"] * 2 + ["FINISHED"] * 2
    assert "optuna   4 trials: 2 finished, 0 pruned, 2 failed;" in done.stdout
    assert "Traceback" not in done.stderr


def test_too_many_failures_stop_the_study_asking(tmp_path):
    done = optuna_sweep(
        "hydra/sweeper/sampler=grid", "model.n_estimators=choice(10,20,30)",
        "model.oob_score=choice(false,true)", "model.bootstrap=false",
        "hydra.sweeper.max_failure_rate=0", cwd=tmp_path, trials=6,
    )  # fmt: skip
    assert done.returncode == 1
    study = study_of(tmp_path)
    told = sorted(study.trials, key=lambda t: t.number)
    # It stopped at the first failure, unless that was the last point of the grid.
    assert told[-1].state.name == "FAIL"
    assert sum(t.state.name == "FAIL" for t in told) == 1
    if len(told) < 6:
        assert "stopped asking after 1 failed trials" in done.stdout


def test_a_resumed_grid_visits_each_point_once(tmp_path):
    grid = ("model=ridge", "hydra/sweeper/sampler=grid", "model.alpha=choice(0.5,1.0)",
            "model.fit_intercept=choice(true,false)")  # fmt: skip
    first = optuna_sweep(*grid, cwd=tmp_path, trials=2)
    rest = optuna_sweep(*grid, cwd=tmp_path, trials=4)
    assert first.returncode == rest.returncode == 0, first.stderr + rest.stderr
    study = study_of(tmp_path)
    points = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(points) == 4
    assert len(set(points)) == 4, points


def test_skip_finished_tells_the_study_a_reused_runs_metric(tmp_path):
    first = optuna_sweep(
        "model=ridge", "hydra/sweeper/sampler=grid", "model.alpha=choice(0.5,1.0)",
        cwd=tmp_path, trials=2,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    client = store(tmp_path)
    earlier = {
        r.data.params["alpha"]: r
        for r in client.search_runs([client.get_experiment_by_name("Apple_Models").experiment_id])
        if TRIAL_TAG in r.data.tags
    }
    again = optuna_sweep(
        "model=ridge", "hydra/sweeper/sampler=grid", "model.alpha=choice(0.5,1.0,2.0)",
        "sweep.skip_finished=true", cwd=tmp_path, trials=3,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "optuna   3 trials: 3 finished (2 reused), 0 pruned, 0 failed;" in again.stdout
    import optuna

    storage = f"sqlite:///{tmp_path}/outputs/mlflow.optuna.db"
    studies = optuna.get_all_study_summaries(storage)
    assert len(studies) == 2  # another search space, another study
    (second,) = [s for s in studies if "(" in s.study_name and s.n_trials == 3]
    study = optuna.load_study(study_name=second.study_name, storage=storage)
    reused = [t for t in study.trials if t.user_attrs["sweeplab.status"] == "REUSED"]
    assert {t.params["model.alpha"] for t in reused} == {0.5, 1.0}
    for trial in reused:
        run = earlier[str(trial.params["model.alpha"])]
        assert trial.value == pytest.approx(run.data.metrics["rmse"])
        assert trial.user_attrs["sweeplab.run_id"] == run.info.run_id


@pytest.mark.fresh_store
@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("hydra.sweeper.sampler._target_=os.system",
         "hydra.sweeper.sampler._target_='os.system' is not allowed"),
        ("hydra.sweeper.sampler._target_=optuna.samplers.NoSuchSampler",
         "hydra.sweeper.sampler._target_='optuna.samplers.NoSuchSampler' is not allowed: must be one of"),
        ("hydra.sweeper.direction=maximize",
         "hydra.sweeper.direction='maximize' is not allowed: sweeplab optimises sweep.metric in sweep.direction (minimize)"),
        ("hydra.sweeper.n_trials=0", "hydra.sweeper.n_trials=0 is not allowed: must be >= 1"),
        ("hydra/sweeper/sampler=grid",
         "hydra/sweeper/sampler='grid' is not allowed: needs discrete values: model.alpha is an interval"),
        ("tracking=server", "hydra.sweeper.storage=None is not allowed: must be set when tracking.uri is not a sqlite file"),
        ("hydra.sweeper.custom_search_space=os.system",
         "hydra.sweeper.custom_search_space='os.system' is not allowed"),
        # Composed before the parent run exists, as a grid's jobs are.
        ("model.max_dept=int(interval(2,5))", "max_dept"),
        ("hydra/sweeper/pruner=median",
         "hydra/sweeper/pruner='median' is not allowed: stops trials between folds, and split=holdout has one"),
        ("hydra.sweeper.pruner._target_=os.system",
         "hydra.sweeper.pruner._target_='os.system' is not allowed: a pruner must be a class of optuna.pruners"),
        ("hydra.sweeper.storage=redis://127.0.0.1/0",
         "hydra.sweeper.storage='redis://127.0.0.1/0' is not allowed: must be a database URL"),
    ],
)  # fmt: skip
def test_a_bad_sweeper_setting_is_one_line_before_any_run(tmp_path, override, message):
    env = {"MLFLOW_TRACKING_URI": "http://127.0.0.1:9"} if override == "tracking=server" else None
    done = sweeplab(
        "-m", "hydra/sweeper=optuna", *RIDGE, override, cwd=tmp_path, env=env, timeout=120
    )
    assert done.returncode == 2, done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("sweeplab: error: ")
    assert message in line
    db = tmp_path / "outputs" / "mlflow.db"
    if db.exists():
        with sqlite3.connect(db) as connection:
            assert connection.execute("SELECT COUNT(*) FROM runs").fetchone() == (0,)


def test_the_gp_sampler_without_pytorch_says_how_to_get_it(tmp_path):
    import importlib.util

    if importlib.util.find_spec("torch") is not None:
        pytest.skip("PyTorch is installed here: the GP sampler has what it needs")
    done = sweeplab("-m", "hydra/sweeper=optuna", "hydra/sweeper/sampler=gp", *RIDGE,
                    cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2
    assert "hydra/sweeper/sampler='gp' is not allowed: needs PyTorch" in done.stderr


def test_a_storage_password_is_masked_everywhere(tmp_path):
    need_extra("psycopg", "postgres")
    from services import postgres_bindir, start_postgres

    if postgres_bindir() is None:
        pytest.skip("PostgreSQL's initdb is not installed")
    database = start_postgres("optuna")
    try:
        # The throwaway cluster trusts loopback, so any password opens it.
        secret = "s3cret-optuna-pw"
        storage = database.uri.replace("postgres@", f"postgres:{secret}@")
        done = optuna_sweep(*RIDGE, f"hydra.sweeper.storage={storage}", cwd=tmp_path, trials=2)
        assert done.returncode == 0, done.stderr
        assert secret not in done.stdout + done.stderr
        parent, _ = sweep_runs(store(tmp_path))
        shown = redact_uri(storage)
        assert secret not in shown and "***@127.0.0.1" in shown
        assert parent.data.tags["sweeplab.optuna.storage"] == shown
        assert f"kept in {shown}" in done.stdout
        written = [p for p in tmp_path.rglob("*") if p.is_file()]
        assert any(p.name == "hydra.yaml" for p in written)
        for path in written:
            assert secret.encode() not in path.read_bytes(), path
        import optuna

        (summary,) = optuna.get_all_study_summaries(storage)
        assert summary.n_trials == 2
    finally:
        database.stop()


def test_a_study_name_is_stable_and_what_trials_train_changes_it(tmp_path):
    first = optuna_sweep(*RIDGE, cwd=tmp_path, trials=1)
    other_data = optuna_sweep(*RIDGE, "dataset.n_rows=2000", cwd=tmp_path, trials=1)
    # Reusing runs or renaming the sweep continues the same study: 1 more trial.
    resumed = optuna_sweep(*RIDGE, "sweep.skip_finished=true", "run_name=again", cwd=tmp_path,
                           trials=2)  # fmt: skip
    other_sampler = optuna_sweep(*RIDGE, "hydra/sweeper/sampler=random", cwd=tmp_path, trials=1)
    for done in (first, other_data, resumed, other_sampler):
        assert done.returncode == 0, done.stderr
    assert "optuna   1 trial: " in resumed.stdout and "2 of 2 in all" in resumed.stdout
    import optuna

    storage = f"sqlite:///{tmp_path}/outputs/mlflow.optuna.db"
    names = sorted(s.study_name for s in optuna.get_all_study_summaries(storage))
    assert len(names) == 3
    assert all(n.startswith("Apple_Models: rmse over model.alpha (") for n in names)


@pytest.fixture(scope="session")
def hydras_optuna_plugin(tmp_path_factory) -> Path:
    """Hydra's own hydra-optuna-sweeper 1.3.0, unpacked into a folder for PYTHONPATH.

    It cannot share the venv (it pins optuna<3); its plugin and config modules import only
    Hydra, which is all it takes to register its configs beside sweeplab's.
    """
    import sys
    import zipfile

    from conftest import REQUIRE_EXTRAS

    folder = tmp_path_factory.mktemp("hydra-optuna-sweeper")
    got = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", str(folder),
         "hydra-optuna-sweeper==1.3.0"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if got.returncode != 0:
        message = f"could not download hydra-optuna-sweeper: {got.stderr[-300:]}"
        if REQUIRE_EXTRAS:
            pytest.fail(message)
        pytest.skip(message)
    (wheel,) = folder.glob("*.whl")
    zipfile.ZipFile(wheel).extractall(folder / "site")
    return folder / "site"


@pytest.mark.fresh_store
@pytest.mark.process
def test_with_hydras_own_plugin_installed_too_optuna_is_refused_in_one_line(
    tmp_path, hydras_optuna_plugin
):
    # sweeplab's options live in its own config folder and never replace another package's
    # (so Hydra's plugin keeps its names in every other app). Hydra 1.3 then checks sweeplab's
    # hydra/sweeper/optuna.yaml against that plugin's config of the same name, which it cannot
    # pass: one line says what to do, before any run.
    env = {"PYTHONPATH": str(hydras_optuna_plugin)}
    done = sweeplab_process(
        "-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", *RIDGE,
        cwd=tmp_path, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "sweeplab: error: hydra/sweeper=optuna is sweeplab's Optuna sweeper, but Hydra's "
        "hydra-optuna-sweeper is installed too and Hydra 1.3 checks sweeplab's options against "
        "its configs: pip uninstall hydra-optuna-sweeper (it needs optuna<3; sweeplab's needs "
        ">=4.9)"
    )
    assert not (tmp_path / "outputs" / "mlflow.db").exists()
    # A grid sweep is untouched by it (logged from its own process: no second interpreter).
    grid = sweeplab_process(
        "-m", "model=ridge", "model.alpha=0.5,1.0", "dataset.n_rows=300", cwd=tmp_path,
        env={**env, "SWEEPLAB_TRACKING_PROCESS": "off"},
    )  # fmt: skip
    assert grid.returncode == 0, grid.stderr


def _space(*arguments: str, params: dict[str, str] | None = None):
    from omegaconf import OmegaConf

    from sweeplab.sweep.optuna_search import search_space

    cfg = OmegaConf.create({"hydra": {"sweeper": {"params": params}}})
    return search_space(cfg, list(arguments))


def test_sweep_expressions_become_optunas_distributions():
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    space, fixed = _space(
        "model.max_depth=int(interval(2,12))",
        "model.learning_rate=tag(log, interval(0.01, 0.3))",
        "model.subsample=interval(0.5, 1)",
        "model=choice(lightgbm,hist_gradient_boosting)",
        "model.num_leaves=range(8,64,8)",
        "model.min_child_weight=range(0.5,2.0,0.5)",
        "model.max_bin=tag(log, int(interval(16, 512)))",
        "dataset.n_rows=2000",
    )
    assert space == {
        "model.max_depth": IntDistribution(2, 12),
        "model.learning_rate": FloatDistribution(0.01, 0.3, log=True),
        "model.subsample": FloatDistribution(0.5, 1.0),
        "model": CategoricalDistribution(["lightgbm", "hist_gradient_boosting"]),
        # A range stops before its end, as in a grid: 8, 16, ..., 56.
        "model.num_leaves": IntDistribution(8, 56, step=8),
        "model.min_child_weight": FloatDistribution(0.5, 1.5, step=0.5),
        "model.max_bin": IntDistribution(16, 512, log=True),
    }
    assert fixed == ["dataset.n_rows=2000"]


def test_params_from_a_config_and_the_command_line_merge_with_the_command_line_winning():
    from optuna.distributions import FloatDistribution, IntDistribution

    space, fixed = _space(
        "model.max_depth=int(interval(3,5))", "model.alpha=0.5",
        params={"model.max_depth": "int(interval(2,12))", "model.alpha": "interval(0.1, 1)",
                "model.beta": "interval(1, 2)"},
    )  # fmt: skip
    assert space == {
        "model.max_depth": IntDistribution(3, 5),
        "model.beta": FloatDistribution(1, 2),
    }
    assert fixed == ["model.alpha=0.5"]


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("model.x=glob(*)", "model.x='glob(*)' is not allowed: Optuna sweeps take choice(...)"),
        ("model.x=interval(3, 1)", "an interval's start must be below its end"),
        ("model.x=tag(log, interval(0, 1))", "a log-scaled interval must start above 0"),
        ("model.x=range(5,1)", "must be an increasing, non-empty range"),
    ],
)  # fmt: skip
def test_a_search_space_optuna_cannot_take_is_refused_naming_the_key(argument, message):
    from sweeplab.util.checks import ConfigError

    with pytest.raises(ConfigError, match=r".*") as refused:
        _space(argument)
    assert message in str(refused.value)
    assert str(refused.value).startswith("model.x=")


def test_without_optuna_installed_the_sweeper_says_which_extra(monkeypatch):
    import sys

    from sweeplab.sweep.optuna_search import require_optuna
    from sweeplab.util.errors import UserError

    monkeypatch.setitem(sys.modules, "optuna", None)  # what `import optuna` sees when absent
    with pytest.raises(UserError, match=r"pip install 'sweeplab\[optuna\]'"):
        require_optuna()


def test_search_config_files_set_the_sweeper_and_its_params(tmp_path):
    configs = tmp_path / "my-configs" / "search"
    configs.mkdir(parents=True)
    (configs / "ridge_alpha.yaml").write_text(
        "# @package _global_\n"
        "defaults:\n"
        "  - override /hydra/sweeper: optuna\n"
        "  - override /model: ridge\n"
        "hydra:\n"
        "  sweeper:\n"
        "    n_trials: 3\n"
        "    params:\n"
        "      model.alpha: tag(log, interval(0.01, 100))\n"
        "      model.fit_intercept: choice(true, false)\n"
    )
    done = sweeplab("-m", "--config-dir", "my-configs", "+search=ridge_alpha", cwd=tmp_path,
                    timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    parent, children = sweep_runs(store(tmp_path))
    assert parent.info.run_name == (
        "search=ridge_alpha · alpha x fit_intercept (fi): 3 trials of ridge"
    )
    assert len(children) == 3
    assert {"alpha", "fit_intercept"} <= set(children[0].data.params)
