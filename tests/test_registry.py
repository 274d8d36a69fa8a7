"""From a sweep to a champion: registered versions, an alias that moves only when it wins,
and batch predictions with it, on real stores."""

import math
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from conftest import copy_of_store, sweeplab, sweeplab_tools
from sweeplab.data.apple_sales import NOT_FEATURES, TARGET, apple_sales
from sweeplab.registry import champion as registry
from sweeplab.tracking.tags import LOCK_TAG

# One worker runs them all (--dist loadgroup): they share the suite's mlflow server.
pytestmark = pytest.mark.xdist_group("mlflow_server")

RIDGE = ("model=ridge",)


def tools(*args: str, cwd: Path):
    return sweeplab_tools(*args, cwd=cwd)


def store(root: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{root}/outputs/mlflow.db")


def lines_of(done, start: str) -> list[str]:
    return [line for line in done.stdout.splitlines() if line.startswith(start)]


def champion(client: MlflowClient, name: str = "apple_demand") -> str:
    return str(client.get_model_version_by_alias(name, "champion").version)


@pytest.fixture(scope="session")
def history(tmp_path_factory, migrated_store):
    """Five registrations of apple_demand, as a user would make them: (launch dir, outputs)."""
    root = tmp_path_factory.mktemp("registry")
    copy_of_store(migrated_store, root / "outputs" / "mlflow.db")
    register = "sweep.register=apple_demand"
    steps = {
        "first sweep": sweeplab("-m", *RIDGE, "model.alpha=0.5,1", register, cwd=root),
        "worse sweep": sweeplab("-m", *RIDGE, "model.alpha=1000,2000", register, cwd=root),
        # The default random forest beats ridge on the apple data.
        "better run": sweeplab("model.n_estimators=30", register, cwd=root),
        "other data": sweeplab("model.n_estimators=30", "dataset.n_rows=2000", register, cwd=root),
        "forced": sweeplab(*RIDGE, "model.alpha=3000", register, "sweep.promote=always", cwd=root),
    }
    return root, steps


def test_the_champion_moves_only_when_a_new_version_wins(history):
    root, steps = history
    for name, done in steps.items():
        assert done.returncode == 0, f"{name}: {done.stderr}"
    said = {name: lines_of(done, "champion") for name, done in steps.items()}
    # Each registration is one new version; one line says what happened to the alias.
    assert [lines_of(d, "registry apple_demand v")[0].split()[2] for d in steps.values()] == [
        "v1", "v2", "v3", "v4", "v5",
    ]  # fmt: skip
    assert said["first sweep"][0].startswith("champion: apple_demand v1 (rmse ")
    assert said["first sweep"][0].endswith(", the first")
    assert said["worse sweep"][0].startswith("champion stays apple_demand v1 (rmse ")
    assert ": v2 has rmse 1" in said["worse sweep"][0]
    assert said["better run"][0].startswith("champion: apple_demand v3 (rmse 12")
    assert " replaces v1 (rmse 124." in said["better run"][0]
    assert said["other data"][0].startswith("champion stays apple_demand v3")
    assert "v4 was trained on other data" in said["other data"][0]
    assert said["forced"][0].startswith("champion: apple_demand v5 (rmse ")
    assert said["forced"][0].endswith(" (sweep.promote=always)")
    assert " replaces v3 (rmse " in said["forced"][0]
    assert champion(store(root)) == "5"


def test_a_version_says_where_it_came_from_and_how_it_scored(history):
    root, _ = history
    client = store(root)
    v1 = client.get_model_version("apple_demand", "1")
    source = client.get_run(v1.run_id)
    parent = client.get_run(source.data.tags["mlflow.parentRunId"])
    assert v1.tags["sweeplab.source_run_id"] == source.info.run_id
    assert v1.tags["sweeplab.parent_run_id"] == parent.info.run_id
    assert v1.tags["sweeplab.metric"] == "rmse"
    assert float(v1.tags["sweeplab.metric_value"]) == pytest.approx(source.data.metrics["rmse"])
    assert v1.tags["sweeplab.data_digest"] == source.data.tags["sweeplab.data_digest"]
    assert v1.tags["sweeplab.config_fingerprint"] == source.data.tags["sweeplab.config_fingerprint"]
    assert "model=ridge model.alpha=0.5,1" in v1.description
    # The sweep's best job is the version; the parent says which version it became.
    assert parent.data.tags["best_run_id"] == source.info.run_id
    assert parent.data.tags["sweeplab.registered_version"] == "apple_demand v1"
    # The version serves the same model the run logged.
    (output,) = source.outputs.model_outputs
    assert v1.source == f"models:/{output.model_id}"


def test_models_lists_versions_with_aliases_scores_and_runs(history):
    root, _ = history
    done = tools("models", "apple_demand", cwd=root)
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.strip().splitlines()
    assert header.split() == ["model", "version", "aliases", "metric", "value", "data", "run",
                              "sweep", "created"]  # fmt: skip
    assert [row.split()[1] for row in rows] == ["5", "4", "3", "2", "1"]
    assert rows[0].split()[2] == "champion"
    client = store(root)
    for row in rows:
        version = client.get_model_version("apple_demand", row.split()[1])
        assert version.run_id in row
    everything = tools("models", cwd=root)
    assert everything.stdout == done.stdout  # one registered model here, and no lock left


def test_promote_by_hand_registers_a_run_and_moves_the_alias_if_it_wins(history):
    root, _ = history
    client = store(root)
    v3 = client.get_model_version("apple_demand", "3")
    done = tools("promote", v3.run_id, "--name", "apple_demand", cwd=root)
    assert done.returncode == 0, done.stderr
    # v3's run is a version already: no v6, and v3 beats the forced v5 on the same data.
    assert done.stdout.splitlines() == [
        f"registry apple_demand v3 is run {v3.run_id}'s model already",
        done.stdout.splitlines()[1],
    ]
    assert done.stdout.splitlines()[1].startswith("champion: apple_demand v3 (rmse ")
    assert " replaces v5 (rmse " in done.stdout
    assert champion(client) == "3"
    # A sweep's parent stands for its best job, which is v1 already.
    v1 = client.get_model_version("apple_demand", "1")
    parent = client.get_run(v1.run_id).data.tags["mlflow.parentRunId"]
    by_parent = tools("promote", parent, "--name", "apple_demand", cwd=root)
    assert by_parent.returncode == 0, by_parent.stderr
    assert by_parent.stdout.splitlines()[:2] == [
        f"run {parent} is a sweep's parent: promoting its best job's run {v1.run_id}",
        f"registry apple_demand v1 is run {v1.run_id}'s model already",
    ]
    assert by_parent.stdout.splitlines()[2].startswith("champion stays apple_demand v3 ")
    # Ranked another way, the same version would carry a ranking it was not registered by.
    other_metric = tools("promote", v3.run_id, "--name", "apple_demand", "--metric", "r2", cwd=root)
    assert other_metric.returncode == 2
    assert "v3 is run" in other_metric.stderr and "ranked by rmse (minimize), not r2" in (
        other_metric.stderr
    )
    assert len(client.search_model_versions("name = 'apple_demand'")) == 5
    # Into another registered model it is a new version there; `--alias` names another alias.
    other = tools("promote", v3.run_id, "--name", "forecasts", "--alias", "production", cwd=root)
    assert other.returncode == 0, other.stderr
    assert "production: forecasts v1 (rmse " in other.stdout
    assert str(client.get_model_version_by_alias("forecasts", "production").version) == "1"


def test_predict_scores_a_csv_with_the_champion_as_its_run_scored(history, tmp_path):
    root, _ = history
    client = store(root)
    best = client.get_run(client.get_model_version_by_alias("apple_demand", "champion").run_id)
    # The run's own data and split: scoring its validation rows must give its logged rmse.
    from sweeplab.data.base import describe
    from sweeplab.model import splits

    frame = apple_sales(n_rows=5000, base_demand=1000, seed=9999, end_date="2023-11-01")
    data = describe(frame, target=TARGET, drop=NOT_FEATURES, task="regression",
                    name="apple_sales", source=None, digest="", where="")  # fmt: skip
    split = splits.holdout(data, 0.2, 42)
    validation = frame.loc[split.X_val.index]
    validation.to_csv(tmp_path / "new.csv", index=False)
    done = tools("predict", "models:/apple_demand@champion", "--input", str(tmp_path / "new.csv"),
                 "--output", str(tmp_path / "scored.csv"), cwd=root)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "predicted 1,000 rows" in done.stdout
    version = client.get_model_version_by_alias("apple_demand", "champion")
    assert f"(apple_demand v{version.version}, run {best.info.run_id})" in done.stdout
    scored = pd.read_csv(tmp_path / "scored.csv")
    assert list(scored.columns) == [*frame.columns, "prediction"]
    rmse = math.sqrt(((scored["prediction"] - scored[TARGET]) ** 2).mean())
    assert rmse == pytest.approx(best.data.metrics["rmse"], rel=1e-6)

    # As most CSV writers write them: whole numbers without ".0" in float columns, and a
    # flag column read back as text. They are the same values: the same predictions.
    whole = validation.head(50).copy()
    whole["previous_days_demand"] = whole["previous_days_demand"].round()
    as_written = whole.copy()
    as_written["previous_days_demand"] = as_written["previous_days_demand"].astype("int64")
    as_written["promo"] = as_written["promo"].astype(str)
    whole.to_csv(tmp_path / "floats.csv", index=False)
    as_written.to_csv(tmp_path / "ints.csv", index=False)
    for name in ("floats", "ints"):
        done = tools("predict", "models:/apple_demand@champion", "--input",
                     str(tmp_path / f"{name}.csv"), "--output", str(tmp_path / f"{name}.out.csv"),
                     cwd=root)  # fmt: skip
        assert done.returncode == 0, done.stderr
    floats, ints = (pd.read_csv(tmp_path / f"{n}.out.csv") for n in ("floats", "ints"))
    assert ints["prediction"].tolist() == floats["prediction"].tolist()
    # A value that would change is refused, naming the column, the types and the value.
    half = whole.astype({"promo": "float64"})
    half.loc[half.index[3], "promo"] = 0.5
    half.to_csv(tmp_path / "half.csv", index=False)
    refused = tools("predict", "models:/apple_demand@champion", "--input",
                    str(tmp_path / "half.csv"), "--output", str(tmp_path / "half.out.csv"),
                    cwd=root)  # fmt: skip
    assert refused.returncode == 2
    (line,) = refused.stderr.strip().splitlines()
    assert ("column 'promo' holds float64 values and the model's signature wants long (int64); "
            "0.5 would not stay the same value") in line  # fmt: skip


def test_predict_refuses_a_table_without_a_column_the_model_needs(history, tmp_path):
    root, _ = history
    frame = apple_sales(n_rows=20, base_demand=1000, seed=1, end_date="2024-01-01")
    frame.drop(columns=["price_per_kg"]).to_parquet(tmp_path / "new.parquet")
    done = tools("predict", "models:/apple_demand@champion", "--input",
                 str(tmp_path / "new.parquet"), "--output", str(tmp_path / "out.csv"),
                 cwd=root)  # fmt: skip
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "has no column 'price_per_kg', which the model's signature needs" in line
    assert not (tmp_path / "out.csv").exists()


def test_predict_gives_a_classifiers_labels(tmp_path):
    from sklearn.datasets import load_iris

    done = sweeplab("dataset=sklearn", "model=logistic_regression", "sweep.register=iris",
                    cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "champion: iris v1 (accuracy " in done.stdout
    iris = load_iris(as_frame=True)
    iris.frame.to_csv(tmp_path / "flowers.csv", index=False)
    scored = tools("predict", "models:/iris@champion", "--input", "flowers.csv",
                   "--output", "labels.parquet", "--column", "species", cwd=tmp_path)  # fmt: skip
    assert scored.returncode == 0, scored.stderr
    labels = pd.read_parquet(tmp_path / "labels.parquet")["species"]
    assert set(labels) <= {0, 1, 2}
    assert (labels == iris.frame["target"]).mean() > 0.9
    with_proba = tools("predict", "models:/iris@champion", "--input", "flowers.csv", "--proba",
                       "--output", "proba.csv", "--column", "species", cwd=tmp_path)  # fmt: skip
    assert with_proba.returncode == 0, with_proba.stderr
    table = pd.read_csv(tmp_path / "proba.csv")
    columns = ["species_0", "species_1", "species_2"]
    assert list(table.columns[-4:]) == ["species", *columns]
    assert table[columns].sum(axis=1).tolist() == pytest.approx([1.0] * len(table))
    # Each row's label is its most probable class.
    assert (table[columns].to_numpy().argmax(axis=1) == table["species"]).all()


def test_predict_one_hot_encodes_a_text_column_as_the_pipeline_was_trained(tmp_path):
    rows = 300
    frame = pd.DataFrame({
        "region": [["north", "south", "east"][i % 3] for i in range(rows)],
        "size": [float(i % 17) for i in range(rows)],
    })  # fmt: skip
    frame["sales"] = frame["size"] * 3 + frame["region"].map({"north": 0, "south": 50, "east": 100})
    frame.to_csv(tmp_path / "sales.csv", index=False)
    done = sweeplab("dataset=table", "dataset.path=sales.csv", "dataset.target=sales",
                    "model=ridge", "model.alpha=0.001", "sweep.register=sales", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    new = pd.DataFrame({"region": ["east", "north", "west"], "size": [1.0, 2.0, 3.0]})
    new.to_csv(tmp_path / "new.csv", index=False)
    scored = tools("predict", "models:/sales/1", "--input", "new.csv", "--output", "out.csv",
                   cwd=tmp_path)  # fmt: skip
    assert scored.returncode == 0, scored.stderr
    out = pd.read_csv(tmp_path / "out.csv")
    assert out["prediction"][:2].tolist() == pytest.approx([103.0, 6.0], abs=0.5)
    # A region never seen in training encodes as no region at all, not as an error.
    assert math.isfinite(out["prediction"][2])


def test_registration_through_a_tracking_server(mlflow_server, tmp_path):
    uri, _ = mlflow_server
    server = ("tracking=server", f"tracking.uri={uri}", "experiment.name=registry_server",
              "sweep.register=server_demand")  # fmt: skip
    first = sweeplab(*server, *RIDGE, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "champion: server_demand v1 (rmse " in first.stdout
    better = sweeplab("-m", *server, "model.n_estimators=20,30", cwd=tmp_path, timeout=300)
    assert better.returncode == 0, better.stderr
    (moved,) = lines_of(better, "champion")
    assert moved.startswith("champion: server_demand v2 (rmse ")
    assert " replaces v1 (rmse " in moved
    listed = tools("models", "server_demand", "--tracking-uri", uri, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[1].split()[:3] == ["server_demand", "2", "champion"]
    frame = apple_sales(n_rows=30, base_demand=1000, seed=3, end_date="2024-02-01")
    frame.to_csv(tmp_path / "new.csv", index=False)
    scored = tools("predict", "models:/server_demand@champion", "--input", "new.csv",
                   "--output", "out.csv", "--tracking-uri", uri, cwd=tmp_path)  # fmt: skip
    assert scored.returncode == 0, scored.stderr
    assert len(pd.read_csv(tmp_path / "out.csv")) == 30


@pytest.mark.parametrize("where", ["sqlite", "server"])
def test_two_promotions_at_once_leave_the_better_version_champion(where, mlflow_server, tmp_path):
    """Each round, two threads promote at the same instant: a better and a worse version."""
    uri = mlflow_server[0] if where == "server" else f"sqlite:///{tmp_path}/outputs/mlflow.db"
    name = f"race_{where}_{time.time_ns()}"
    target = ["tracking=server", f"tracking.uri={uri}"] if where == "server" else []
    made = sweeplab("-m", *RIDGE, "model.alpha=0.1,5000", *target, "experiment.name=race",
                    f"sweep.register={name}", cwd=tmp_path, timeout=300)  # fmt: skip
    assert made.returncode == 0, made.stderr
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("race").experiment_id
    runs = [r for r in client.search_runs([experiment], order_by=["metrics.rmse ASC"])
            if "sweeplab.sweep.job" in r.data.tags]  # fmt: skip
    good, bad = (client.get_run(r.info.run_id) for r in runs[:2])
    versions = {
        label: registry.register(client, name, run, metric="rmse", direction="minimize")
        for label, run in (("good", good), ("bad", bad))
    }
    for _ in range(5):
        client.delete_registered_model_alias(name, "champion")
        start = threading.Barrier(2)
        said: dict[str, str] = {}

        def promote(label: str, start=start, said=said) -> None:
            start.wait()
            try:
                said[label] = registry.promote(
                    client, name, versions[label], "champion", always=False
                )
            except Exception as e:  # a thread's exception would be lost: say it in the assert
                said[label] = f"raised {e!r}"

        threads = [threading.Thread(target=promote, args=(label,)) for label in versions]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        good_v, bad_v = versions["good"].version, versions["bad"].version
        assert not [s for s in said.values() if s.startswith("raised")], said
        assert champion(client, name) == str(good_v)
        # Exactly one of them found no champion; the other compared against it.
        assert sum(line.endswith(", the first") for line in said.values()) == 1
        if said["bad"].endswith(", the first"):
            assert f" replaces v{bad_v} " in said["good"]
        else:
            assert said["bad"].startswith(f"champion stays {name} v{good_v} ")
    assert registry.LOCK_SUFFIX not in " ".join(m.name for m in client.search_registered_models())


def test_a_lock_left_by_a_dead_process_is_broken(tmp_path, monkeypatch):
    client = MlflowClient(f"sqlite:///{tmp_path}/lock.db")
    client.create_registered_model("m" + registry.LOCK_SUFFIX, tags={LOCK_TAG: "dead:1"})
    monkeypatch.setattr(registry, "STALE_LOCK_SECONDS", 0.5)
    started = time.monotonic()
    with registry._Lock(client, "m"):
        held = client.get_registered_model("m" + registry.LOCK_SUFFIX)
        assert held.tags[LOCK_TAG] != "dead:1"
    assert time.monotonic() - started < 10
    assert not client.search_registered_models()


def test_the_lock_is_taken_when_its_holder_lets_go_while_mlflow_words_a_refusal(
    tmp_path, monkeypatch
):
    """The interleaving that failed a promotion through a server under load, made certain.

    MLflow's store, refusing a name that exists, looks that model up to word its error; the
    holder may delete it in between, and the refusal becomes RESOURCE_DOES_NOT_EXIST.
    """
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

    client = MlflowClient(f"sqlite:///{tmp_path}/lock.db")
    lock = "m" + registry.LOCK_SUFFIX
    client.create_registered_model(lock, tags={LOCK_TAG: "other:1"})  # another promotion's
    lookup = SqlAlchemyStore.get_registered_model
    released: list[str] = []

    def holder_lets_go_first(store, name):
        if name == lock and not released:
            released.append(name)
            store.delete_registered_model(name)  # the holder's __exit__, at the worst moment
        return lookup(store, name)

    monkeypatch.setattr(SqlAlchemyStore, "get_registered_model", holder_lets_go_first)
    with registry._Lock(client, "m"):
        assert client.get_registered_model(lock).tags[LOCK_TAG] != "other:1"
    assert released == [lock]
    assert not client.search_registered_models()


@pytest.mark.fresh_store
@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("sweep.alias=latest", "sweep.alias='latest' is not allowed"),
        ("sweep.alias=v3", "sweep.alias='v3' is not allowed"),
        ("sweep.register=a/b", "sweep.register='a/b' is not allowed: must be a registered model name"),
        ("sweep.register=m.sweeplab-lock", "not ending in '.sweeplab-lock'"),
        ("sweep.alias=Champion", "must be lower-case letters"),
        ("sweep.promote=sometimes", "sweep.promote='sometimes' is not allowed: must be one of [better, always]"),
    ],
)  # fmt: skip
def test_a_bad_registry_setting_is_one_line_before_any_run(tmp_path, override, message):
    done = sweeplab(*RIDGE, override, cwd=tmp_path)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert message in line
    assert not (tmp_path / "outputs" / "mlflow.db").exists()


def test_a_version_that_could_never_be_compared_is_refused_and_an_identical_one_reused(tmp_path):
    small = ("model=ridge", "dataset.n_rows=300", "sweep.register=demo")
    first = sweeplab(*small, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "champion: demo v1 (rmse " in first.stdout
    # The same run again (no skip_finished: it trains again): the same model, not a v2.
    again = sweeplab(*small, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    (reused,) = lines_of(again, "registry")
    assert reused.startswith("registry demo v1 is this model already (same config fingerprint")
    client = store(tmp_path)
    assert [str(v.version) for v in client.search_model_versions("name = 'demo'")] == ["1"]
    # A classifier ranked by accuracy under a name whose versions are ranked by rmse.
    iris = sweeplab("dataset=sklearn", "model=logistic_regression", "sweep.register=demo",
                    cwd=tmp_path)  # fmt: skip
    assert iris.returncode == 1
    assert "demo's versions are ranked by rmse (minimize), v1 the newest" in iris.stderr
    assert "could never be compared with them: register it under another name\n" in iris.stderr
    assert "UserError" not in iris.stderr  # the refusal as it reads, not a class's name
    run_id = iris.stdout.split("id ")[1].split()[0]
    by_hand = tools("promote", run_id, "--name", "demo", cwd=tmp_path)
    assert by_hand.returncode == 2
    assert len(by_hand.stderr.strip().splitlines()) == 1
    assert [str(v.version) for v in client.search_model_versions("name = 'demo'")] == ["1"]
