"""Text columns of one's own file: the encodings a user chooses, and the choice they are asked for."""

import hashlib
import importlib.util
import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from conftest import need_extra
from sweeplab.config import preflight
from sweeplab.data.base import resolved_items
from sweeplab.run import plan
from sweeplab.run.runner import execute
from sweeplab.util.checks import ConfigError

# The shipped models besides HistGradientBoosting that take native columns, where installed.
NATIVE_EXTRAS = "".join(
    f" or model={m}" for m in ("lightgbm", "xgboost") if importlib.util.find_spec(m)
)


def shops(rows: int = 1500, seed: int = 3) -> pd.DataFrame:
    """Sales at ~200 shops (a few common, most rare; some not given); the shop moves the sales."""
    rng = np.random.default_rng(seed)
    shop = np.array([f"shop{int(i) % 300}" for i in rng.zipf(1.4, rows)], dtype=object)
    effect = {name: rng.normal(0, 10) for name in np.unique(shop)}
    frame = pd.DataFrame({"shop": shop, "price": rng.uniform(1, 3, rows).round(2)})
    frame["sales"] = [effect[s] for s in shop] - 5 * frame.price + rng.normal(0, 1, rows)
    frame["sold_out"] = np.where(frame.sales > frame.sales.median(), "yes", "no")
    frame.loc[::40, "shop"] = None
    frame["receipt"] = [f"r{i:05d}" for i in range(rows)]  # an id: a value of its own per row
    return frame


@pytest.fixture
def shops_csv(isolated: Path) -> str:
    shops().to_csv(isolated / "shops.csv", index=False)
    return "shops.csv"


def table(path: str, target: str, *more: str) -> list[str]:
    return ["dataset=table", f"dataset.path={path}", f"dataset.target={target}", *more]


@pytest.mark.parametrize("encoding", ["onehot", "ordinal", "target", "native"])
def test_each_encoding_trains_a_model_that_takes_raw_rows(compose_cfg, shops_csv, encoding):
    overrides = [
        *table(shops_csv, "sales", "dataset.drop=[sold_out,receipt]"),
        f"dataset.encoding={encoding}",
        "dataset.max_categories=20",
        "model=hist_gradient_boosting",
    ]
    planned = plan.make(compose_cfg(*overrides))
    assert planned.data.categorical == {"shop": encoding}
    encoder = planned.estimator.named_steps["encode"]
    assert [(name, columns) for name, _, columns in encoder.transformers] == [(encoding, ["shop"])]
    result = execute(compose_cfg(*overrides))
    model = mlflow.pyfunc.load_model(result.model_uri)
    # A shop training never saw, and one not given: both still predicted.
    rows = pd.DataFrame({"shop": ["shop7", "a new shop", None], "price": [2.0, 2.0, 2.0]})
    assert np.isfinite(model.predict(rows)).all()
    fitted = mlflow.sklearn.load_model(result.model_uri).named_steps["encode"]
    width = len(fitted.get_feature_names_out()) - 1  # all but price
    # One-hot keeps max_categories columns, the rarest shops in the last ('other').
    assert width == {"onehot": 20, "ordinal": 1, "target": 1, "native": 1}[encoding]
    if encoding == "onehot":
        assert "shop_infrequent_sklearn" in fitted.get_feature_names_out()


@pytest.mark.parametrize("model", ["hist_gradient_boosting", "lightgbm", "xgboost"])
def test_native_columns_are_split_as_categories_by_the_model_itself(compose_cfg, shops_csv, model):
    if model != "hist_gradient_boosting":
        need_extra(model)
    overrides = [*table(shops_csv, "sales", "dataset.drop=[sold_out,receipt]"), f"model={model}",
                 "dataset.encoding=native", "dataset.max_categories=20"]  # fmt: skip
    result = execute(compose_cfg(*overrides))
    pipeline = mlflow.sklearn.load_model(result.model_uri)
    fitted = pipeline.named_steps["model"]
    # Only the model's own limit caps the codes, not dataset.max_categories (one-hot's).
    (codes,) = [encoder for name, encoder, _ in pipeline.named_steps["encode"].transformers_
                if name == "native"]  # fmt: skip
    assert codes.max_categories == (255 if model == "hist_gradient_boosting" else None)
    # Each library's own record that column 0 (the shop) is a category, price a number.
    if model == "hist_gradient_boosting":
        assert list(fitted.is_categorical_) == [True, False]
    elif model == "lightgbm":
        trees = json.dumps(fitted.booster_.dump_model()["tree_info"])
        assert '"decision_type": "=="' in trees  # a split on a set of categories
    else:
        assert fitted.get_booster().feature_types == ["c", "q"]
    rows = pd.DataFrame({"shop": ["shop7", "a new shop", None], "price": [2.0, 2.0, 2.0]})
    assert np.isfinite(mlflow.pyfunc.load_model(result.model_uri).predict(rows)).all()


def test_xgboost_takes_native_columns_beside_one_column_encodings_only(compose_cfg, isolated):
    need_extra("xgboost")
    frame = shops()
    frame["city"] = np.where(frame.price > 2, "north", "south")
    frame["channel"] = np.where(frame.index % 3 == 0, "web", "store")
    frame.to_csv(isolated / "two.csv", index=False)
    overrides = [*table("two.csv", "sales", "dataset.drop=[sold_out,receipt]"), "model=xgboost",
                 "+dataset.encode={shop:native,city:onehot,channel:ordinal}"]  # fmt: skip
    with pytest.raises(ConfigError, match=r"column\(s\) \['city'\] are encoded into a number "
                       r"of columns known only then: encode them as one column each, e.g. "
                       r"'\+dataset.encode={city:ordinal}'"):  # fmt: skip
        plan.make(compose_cfg(*overrides))
    both = plan.make(compose_cfg(*overrides, "dataset.encode.city=native"))
    # Columns: the native shop and city first, then the ordinal channel and price as numbers.
    assert both.estimator.named_steps["model"].feature_types == ["c", "c", "q", "q"]


def test_xgboost_is_refused_classes_it_cannot_take_before_any_run(compose_cfg, shops_csv):
    need_extra("xgboost")
    overrides = table(shops_csv, "sold_out", "dataset.drop=[sales,receipt]", "model=xgboost")
    with pytest.raises(ConfigError, match=r"xgboost.XGBClassifier takes classes numbered 0 to 1 "
                       r"only, and column 'sold_out' of shops holds \['no', 'yes'\]: pick "
                       r"hist_gradient_boosting, .*or number the classes in the file"):  # fmt: skip
        plan.make(compose_cfg(*overrides))


def test_target_encoding_carries_a_wide_columns_signal_one_hot_capped_loses(compose_cfg, shops_csv):
    def rmse(*more: str) -> float:
        chosen = compose_cfg(*table(shops_csv, "sales", "model=ridge", *more))
        return execute(chosen).metrics["rmse"]

    without = rmse("dataset.drop=[sold_out,receipt,shop]")
    capped = rmse(
        "dataset.drop=[sold_out,receipt]", "dataset.encoding=onehot", "dataset.max_categories=5"
    )
    target = rmse("dataset.drop=[sold_out,receipt]", "+dataset.encode={shop:target}")
    assert target < capped < without


def test_a_classification_is_target_encoded_per_class(compose_cfg, shops_csv):
    overrides = table(shops_csv, "sold_out", "dataset.drop=[sales,receipt]", "dataset.encoding=target",
                      "model=logistic_regression")  # fmt: skip
    result = execute(compose_cfg(*overrides))
    assert result.metrics["accuracy"] > 0.7
    rows = pd.DataFrame({"shop": ["shop1", "elsewhere"], "price": [1.5, 1.5]})
    assert set(mlflow.pyfunc.load_model(result.model_uri).predict(rows)) <= {"yes", "no"}


def test_a_number_column_of_codes_can_be_encoded(compose_cfg, isolated):
    frame = shops()
    frame["shop"] = frame.shop.str.removeprefix("shop").astype(float)  # codes, as numbers
    frame.to_csv(isolated / "coded.csv", index=False)
    overrides = table("coded.csv", "sales", "dataset.drop=[sold_out,receipt]", "model=ridge")
    # As a number, a missing shop stops ridge; as a category, missing is one more value.
    with pytest.raises(
        ConfigError, match=r"does not take missing values, and column\(s\) \['shop'\]"
    ):
        plan.make(compose_cfg(*overrides))
    coded = plan.make(compose_cfg(*overrides, "+dataset.encode={shop:target}"))
    assert coded.data.categorical == {"shop": "target"}
    assert execute(compose_cfg(*overrides, "+dataset.encode={shop:target}")).metrics["rmse"] < 5


@pytest.mark.parametrize(
    ("more", "message"),
    [
        (
            ["+dataset.encode={shop:target,shp:onehot}"],
            r"^dataset.encode={'shop': 'target', 'shp': 'onehot'} is not allowed: \['shp'\] not "
            r"feature column\(s\) of shops.csv: features are \['shop', 'price'\]$",
        ),
        (
            ["dataset.encoding=native", "model=ridge"],
            r"^model='ridge' is not allowed: sklearn.linear_model.Ridge cannot be told which "
            r"columns are categories, and column\(s\) \['shop'\] are to be encoded natively: pick "
            rf"model=hist_gradient_boosting{NATIVE_EXTRAS}, or another encoding for them \(target, "
            r"ordinal, onehot\) in dataset.encoding or dataset.encode$",
        ),
        (
            ["dataset.max_categories=150"],
            r"^dataset.encode={} is not allowed: text column\(s\) shop \(199 values\) of "
            r"shops.csv have more distinct values than dataset.max_categories=150",
        ),
        (["dataset.max_categories=1"], r"^dataset.max_categories=1 is not allowed: must be >= 2$"),
        (
            ["dataset.encoding=target", "dataset.max_categories=20", "dataset.drop=[]"],
            r"^dataset.drop=\[\] is not allowed: text column\(s\) \['receipt'\] of shops.csv hold "
            r"a different value in every row \(ids or free text; to encode one anyway, name it "
            r"in dataset.encode\)",
        ),
    ],
)
def test_encoding_choices_that_cannot_apply_are_one_line(compose_cfg, shops_csv, more, message):
    with pytest.raises(ConfigError, match=message):
        plan.make(compose_cfg(*table(shops_csv, "sales", "dataset.drop=[sold_out,receipt]", *more)))


def test_a_mapping_value_and_a_plus_too_many_are_named_as_given(isolated):
    with pytest.raises(Exception, match=r"^dataset.encode.shop='targt' is not allowed: must be one "
                       r"of \[auto, onehot, ordinal, target, native\]$"):  # fmt: skip
        preflight.check([*table("shops.csv", "sales"), "+dataset.encode={shop:targt}"])
    with pytest.raises(Exception, match=r"^model.max_depth is already in the config: drop the '\+' "
                       r"of \+model.max_depth=... to set it$"):  # fmt: skip
        preflight.check(["+model.max_depth=3"])


def test_adding_a_column_without_a_plus_says_how(isolated):
    with pytest.raises(Exception, match=r"^dataset.encode.shop is not a key yet: add it with "
                       r"'\+dataset.encode={shop:target}'$"):  # fmt: skip
        preflight.check([*table("shops.csv", "sales"), "dataset.encode={shop:target}"])


def test_encodings_at_their_defaults_keep_the_fingerprints_of_earlier_runs(compose_cfg, shops_csv):
    overrides = table(shops_csv, "sales", "dataset.drop=[sold_out,receipt]")
    planned = plan.make(compose_cfg(*overrides))
    # The fingerprint as it was computed before the encoding keys existed.
    earlier = {
        k: v
        for k, v in resolved_items(planned.cfg.dataset).items()
        if k not in ("path", "encoding", "encode", "max_categories")
    }
    decisive = {
        "dataset": earlier,
        "data": planned.data.digest,
        "model": dict(planned.cfg.model),
    }
    was = hashlib.sha256(json.dumps(decisive, sort_keys=True).encode()).hexdigest()[:16]
    assert planned.fingerprint == was
    spelled_out = plan.make(compose_cfg(*overrides, "dataset.max_categories=1000"))
    assert spelled_out.fingerprint == was
    assert plan.make(compose_cfg(*overrides, "dataset.encoding=target")).fingerprint != was


def test_a_model_refused_for_its_encoding_still_has_its_other_problems_named(compose_cfg, isolated):
    frame = shops()
    frame.loc[::50, "price"] = np.nan
    frame.to_csv(isolated / "gaps.csv", index=False)
    overrides = table("gaps.csv", "sales", "dataset.drop=[sold_out,receipt]", "model=ridge",
                      "dataset.encoding=native")  # fmt: skip
    with pytest.raises(ConfigError) as refused:
        plan.make(compose_cfg(*overrides))
    lines = str(refused.value).splitlines()
    assert len(lines) == 2, lines
    assert "cannot be told which columns are categories" in lines[0]
    assert "does not take missing values, and column(s) ['price']" in lines[1]
