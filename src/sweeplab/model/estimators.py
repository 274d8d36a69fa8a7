"""Model configs to estimators: any allowed class a `_target_` names, checked before it trains.

A model config is data: `_target_` names an estimator class (or one class per task) and every
other key but `name` is a hyperparameter. Nothing is imported until the allow-list
(sweeplab.util.allow) accepts the class. Libraries that MLflow has a flavor for are logged
through it (one ``Library`` record each); everything else through scikit-learn's flavor with skops.
"""

import contextlib
import importlib.metadata
import importlib.util
import inspect
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from omegaconf import DictConfig, OmegaConf

from sweeplab.model.tasks import Task
from sweeplab.util import allow, env
from sweeplab.util.checks import ConfigError
from sweeplab.util.errors import UserError, warn


@dataclass(frozen=True)
class Library:
    """How MLflow logs a model of one library when the model is that library's estimator alone."""

    # The MLflow flavor module, and the name of its log_model's model argument.
    flavor: str
    model_argument: str
    # Its classifiers take classes numbered 0..n-1 only: no text, booleans or other numbers.
    numbered_classes: bool = False
    # How it is told which input columns are categories (dataset.encoding=native): "fit" (an
    # argument of fit, fit_arguments) or "types" (every column's type, as parameters).
    categories: str = "fit"


# Models inside a scikit-learn Pipeline (one-hot encoding) go through mlflow.sklearn instead.
LIBRARIES = {
    "lightgbm": Library("mlflow.lightgbm", "lgb_model"),
    "xgboost": Library("mlflow.xgboost", "xgb_model", numbered_classes=True, categories="types"),
}


def target_for(model: DictConfig, task: str) -> str:
    """The class a model config names for ``task`` (``_target_`` may map tasks to classes)."""
    target = model._target_
    if isinstance(target, DictConfig):
        if task not in target:
            raise ConfigError(
                "model._target_",
                OmegaConf.to_container(target),
                f"names no class for the dataset's task, {task}: give `{task}: package.Class`",
            )
        return str(target[task])
    return str(target)


def display_name(model: DictConfig, target: str) -> str:
    """The model's label in run names and the `model` param: its `name`, else its class."""
    return str(model.get("name") or target.rsplit(".", 1)[-1])


def _first_target(model: DictConfig) -> str | None:
    """The class ``_target_`` names, or the first of its per-task classes."""
    target = model.get("_target_")
    return None if target is None else next(allow.model_targets(target), None)


def model_label(model: DictConfig) -> str:
    """The model's label before its task is known: its `name`, else its (first) class."""
    return display_name(model, _first_target(model) or "model")


def _parameter_names(cls: type) -> tuple[list[str], bool]:
    """The estimator's own parameter names, and whether it takes others by keyword too."""
    signature = inspect.signature(cls)
    takes_more = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    try:
        names = sorted(cls().get_params(deep=False))
    except Exception:  # a constructor with required arguments
        names = sorted(
            n for n, p in signature.parameters.items()
            if n != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        )  # fmt: skip
    return names, takes_more


def parameters_of(model: DictConfig) -> tuple[str, list[str]]:
    """The (first) class a model config names and that class's parameter names."""
    target = _first_target(model)
    if target is None:
        raise KeyError("model._target_")
    cls = allow.load_estimator_class(target, "model._target_")
    return target, _parameter_names(cls)[0]


def _built(value: Any, key: str) -> Any:
    """A hyperparameter's value, with nested ``{_target_: ...}`` estimators built."""
    if isinstance(value, dict) and "_target_" in value:
        cls = allow.load_estimator_class(str(value["_target_"]), f"{key}._target_")
        params = {k: _built(v, f"{key}.{k}") for k, v in value.items() if k != "_target_"}
        return _construct(cls, params, key, str(value["_target_"]))
    if isinstance(value, list):
        return [_built(v, f"{key}[{i}]") for i, v in enumerate(value)]
    return value


def _construct(cls: type, params: dict[str, Any], prefix: str, target: str) -> Any:
    names, takes_more = _parameter_names(cls)
    unknown = [k for k in params if k not in names]
    if unknown and not takes_more:
        key = unknown[0]
        raise ConfigError(
            f"{prefix}.{key}",
            params[key],
            f"unknown hyperparameter of {target}: its parameters are {names}",
        )
    try:
        estimator = cls(**params)
    except TypeError as e:
        raise UserError(f"{prefix}: {cls.__name__} refuses its hyperparameters: {e}") from None
    _validate_values(estimator, prefix)
    return estimator


_INVALID = re.compile(r"The '(?P<key>[^']+)' parameter of \w+ (?P<rule>must be .*?)\. Got ")


def _validate_values(estimator: Any, prefix: str) -> None:
    """scikit-learn's own check of the hyperparameters, where the estimator has one."""
    validate = getattr(estimator, "_validate_params", None)
    # LightGBM and XGBoost inherit the method from BaseEstimator but declare no constraints.
    if validate is None or not hasattr(type(estimator), "_parameter_constraints"):
        return
    from sklearn.utils._param_validation import InvalidParameterError

    try:
        validate()
    except InvalidParameterError as e:
        found = _INVALID.search(str(e))
        if found is None:
            raise UserError(f"{prefix}: {e}") from None
        key = found["key"]
        raise ConfigError(
            f"{prefix}.{key}", estimator.get_params(deep=False).get(key), found["rule"]
        ) from None


def shipped_for(task: Task, *, takes_missing: bool = False) -> list[str]:
    """The shipped model options (sweeplab/conf/model/) that fit ``task``, by name: those whose
    library is installed, and with ``takes_missing`` only those that take missing values."""
    from importlib import resources

    import yaml

    fitting = []
    folder = resources.files("sweeplab.conf").joinpath("model")
    for file in sorted(folder.iterdir(), key=lambda f: f.name):
        if not file.name.endswith(".yaml"):
            continue
        target = yaml.safe_load(file.read_text()).get("_target_")
        # One class, or one class per task from a library that may be an extra.
        named = str(target.get(task.name, "")) if isinstance(target, dict) else str(target)
        if not named or importlib.util.find_spec(named.split(".")[0]) is None:
            continue
        try:
            estimator = allow.load_estimator_class(named, "model._target_")()
        except Exception:  # not importable after all: it is not offered
            continue
        if task.other(estimator) or (takes_missing and not accepts_missing(estimator)):
            continue
        fitting.append(file.name.removesuffix(".yaml"))
    return fitting


def build(
    model: DictConfig,
    task: Task,
    categorical: Mapping[str, str],
    *,
    width: int = 0,
    max_categories: int = 1000,
) -> tuple[Any, str]:
    """An unfitted estimator for ``task`` with the config's hyperparameters, and its class name.

    Columns to encode as categories (``categorical``: column -> encoding) are encoded in a
    Pipeline in front of it, so that the model takes the data's raw rows. ``width``: how many
    feature columns the data has.
    """
    target = target_for(model, task.name)
    cls = allow.load_estimator_class(target, "model._target_")
    params = {k: _built(v, f"model.{k}") for k, v in hyperparameters(model).items()}
    estimator = _construct(cls, params, "model", target)
    if task.other(estimator):
        other = "classifier" if task.kind == "regressor" else "regressor"
        shipped = ", ".join(f"model={name}" for name in shipped_for(task))
        raise ConfigError(
            "model",
            display_name(model, target),
            f"{target} is a {other}, and the dataset's task is {task.name}: pick a "
            f"{task.kind}: {shipped}, or your own",
        )
    if not categorical:
        return estimator, target
    from sklearn.pipeline import Pipeline

    native = [c for c, encoding in categorical.items() if encoding == "native"]
    # The model's own limit on values per native column, if it has one (the rarest share a code).
    max_native = None
    if native:
        label = display_name(model, target)
        max_native = _mark_native(estimator, native, categorical, width, label, target)
    encode = _encoder(categorical, task, max_categories, max_native)
    return Pipeline([("encode", encode), ("model", estimator)]), target


def _mark_native(
    estimator: Any,
    native: list[str],
    categorical: Mapping[str, str],
    width: int,
    label: str,
    target: str,
) -> int | None:
    """Tell ``estimator`` that the first ``len(native)`` of its ``width`` input columns are
    categories (the encoder puts them first); the most values it takes per column (None: any).

    HistGradientBoosting and XGBoost are told in their parameters; LightGBM at fit time
    (fit_arguments). Raise ConfigError for a model that cannot be told.
    """
    k = len(native)
    library = library_of(estimator)
    if type(estimator).__module__.startswith("sklearn.") and hasattr(
        estimator, "categorical_features"
    ):
        estimator.set_params(categorical_features=list(range(k)))
        return int(estimator.max_bins)
    if library is not None and library.categories == "fit":
        return None
    if library is not None and library.categories == "types":
        # One input column per column: native and ordinal ones. One-hot and target encoding
        # make a number of columns known only once fitted.
        wide = [c for c, encoding in categorical.items() if encoding in ("onehot", "target")]
        if wide:
            narrow = ",".join(f"{c}:ordinal" for c in wide)
            raise ConfigError(
                "model",
                label,
                f"{target} is told the type of each input column before it is fitted, and "
                f"column(s) {wide} are encoded into a number of columns known only then: encode "
                f"them as one column each, e.g. '+dataset.encode={{{narrow}}}' "
                f"(or native), or the native column(s) {native} otherwise",
            )
        estimator.set_params(enable_categorical=True, feature_types=["c"] * k + ["q"] * (width - k))
        return None
    raise ConfigError(
        "model",
        label,
        f"{target} cannot be told which columns are categories, and column(s) {native} are to "
        f"be encoded natively: pick {_native_models()}, or another encoding for them (target, "
        "ordinal, onehot) in dataset.encoding or dataset.encode",
    )


def _native_models() -> str:
    """The shipped models that split categories themselves, of the libraries installed."""
    extras = [n for n in ("lightgbm", "xgboost") if importlib.util.find_spec(n) is not None]
    names = ["hist_gradient_boosting", *extras]
    return " or ".join(f"model={n}" for n in names)


def fit_arguments(model: Any) -> dict[str, Any]:
    """What ``model.fit`` needs besides the rows: a library told its categories at fit time
    (LightGBM) learns there which columns they are (those the encoder gives natively, first)."""
    steps = getattr(model, "named_steps", {})
    library = library_of(steps["model"]) if "encode" in steps else None
    if library is None or library.categories != "fit":
        return {}
    native = [c for name, _, columns in steps["encode"].transformers if name == "native"
              for c in columns]  # fmt: skip
    return {"model__categorical_feature": list(range(len(native)))} if native else {}


def _encoder(
    categorical: Mapping[str, str], task: Task, max_categories: int, max_native: int | None
) -> Any:
    """A ColumnTransformer encoding each column as ``categorical`` says; the rest pass through."""
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.model_selection import KFold, StratifiedKFold
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, TargetEncoder

    makers: dict[str, Callable[[], Any]] = {
        # Unknown and missing values are missing to the model, which splits them apart.
        "native": lambda: OrdinalEncoder(
            handle_unknown="use_encoded_value",
            unknown_value=np.nan,
            encoded_missing_value=np.nan,
            max_categories=max_native,
        ),
        "onehot": lambda: OneHotEncoder(
            handle_unknown="infrequent_if_exist",
            max_categories=max_categories,
            sparse_output=False,
        ),
        # Codes every model takes: -1 for a value training never saw, -2 for a missing one.
        "ordinal": lambda: OrdinalEncoder(
            handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-2
        ),
        # A whole-number regression target would otherwise be taken for classes; the folds
        # of its cross fitting are seeded, so that a run is repeatable.
        "target": lambda: TargetEncoder(
            target_type="continuous" if task.name == "regression" else "auto",
            cv=(KFold if task.name == "regression" else StratifiedKFold)(
                5, shuffle=True, random_state=0
            ),
        ),
    }
    steps = [
        (kind, make(), columns)
        for kind, make in makers.items()
        if (columns := [c for c, encoding in categorical.items() if encoding == kind])
    ]
    return ColumnTransformer(steps, remainder="passthrough", verbose_feature_names_out=False)


def refuses_classes(estimator: Any, classes: Sequence[Any]) -> bool:
    """Whether ``estimator`` cannot learn these class labels (XGBoost takes only 0..n-1)."""
    import numpy as np

    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    library = library_of(final)
    if library is None or not library.numbered_classes:
        return False
    numbered = all(isinstance(c, int | np.integer) and not isinstance(c, bool | np.bool_)
                   for c in classes)  # fmt: skip
    return not numbered or sorted(int(c) for c in classes) != list(range(len(classes)))


def accepts_missing(estimator: Any) -> bool:
    """Whether the estimator says it takes NaN inputs (scikit-learn's allow_nan tag)."""
    from sklearn.utils import get_tags

    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    try:
        return bool(get_tags(final).input_tags.allow_nan)
    except Exception:  # an estimator without tags: let it try
        return True


def _objects(model: Any) -> Iterator[Any]:
    """The model and every estimator inside it (pipeline steps, nested estimators)."""
    yield model
    get_params = getattr(model, "get_params", None)
    if get_params is None:
        return
    try:
        params = get_params(deep=True)
    except Exception:
        return
    for value in params.values():
        if hasattr(value, "get_params") and not isinstance(value, type):
            yield value


def library_of(model: Any) -> Library | None:
    """The MLflow flavor to log ``model`` with, when it is one flavored library's estimator."""
    return _library_in(type(model).__module__)


def _library_in(module: str) -> Library | None:
    return LIBRARIES.get(module.split(".")[0])


def load_serializer(module: str) -> None:
    """Import skops now if a model of ``module`` is saved with it (not a flavored library's).

    skops's import looks up numpy's and scipy's ufuncs in every loaded module: before MLflow's
    ~1,300 modules are loaded it takes ~0.3 s, after them ~0.55 s.
    """
    if _library_in(module) is None:
        import skops.io  # noqa: F401


def import_early(model: DictConfig) -> None:
    """Import the class ``model`` names now, if the allow-list lets it; errors are the jobs' to
    report (a sweep imports it while its tracking process starts, instead of in its first job).
    """
    target = _first_target(model)
    if target is not None and allow.is_estimator_target(target):
        with contextlib.suppress(Exception):
            allow.load_estimator_class(target, "model._target_")


def first_module(model: DictConfig) -> str:
    """The module of the class a model config names (the first, if it names one a task)."""
    return (_first_target(model) or "").rpartition(".")[0]


@cache
def _distributions() -> dict[str, list[str]]:
    return dict(importlib.metadata.packages_distributions())


_unpinned: set[str] = set()


def requirements(model: Any, base: list[str]) -> list[str]:
    """``base`` plus each other library the model's classes come from, pinned as installed."""
    pinned = {re.split(r"[=<>!~ ]", r, maxsplit=1)[0].lower(): r for r in base}
    modules = {type(o).__module__.split(".")[0] for o in _objects(model)}
    for module in sorted(modules - {"sklearn", "builtins"}):
        names = _distributions().get(module)
        if not names:
            if module not in _unpinned:
                _unpinned.add(module)
                warn(f"{module} is not an installed distribution: the logged model's "
                      "requirements cannot name it")  # fmt: skip
            continue
        name = names[0]
        if name.lower() not in pinned:
            pinned[name.lower()] = f"{name}=={importlib.metadata.version(name)}"
    return list(pinned.values())


def _structure(model: Any) -> tuple[str, ...]:
    """The model's classes and its settings other than numbers: what decides the types a
    fitted model holds (HistGradientBoosting with categorical features holds a partial)."""
    types = [f"{type(o).__module__}.{type(o).__qualname__}" for o in _objects(model)]
    try:
        params = model.get_params(deep=True)
    except Exception:
        params = {}
    settings = [
        f"{k}={v!r}"
        for k, v in sorted(params.items())
        if not isinstance(v, int | float | type(None)) and not hasattr(v, "get_params")
    ]
    return (*types, *settings)


_trusted: dict[tuple[str, ...], list[str]] = {}


def skops_trusted_types(model: Any) -> list[str]:
    """The types skops must be told to trust to load ``model`` back; all from allowed modules.

    Found by serialising the model once; the answer is kept per model structure (a sweep's
    jobs share it).
    """
    structure = _structure(model)
    if structure not in _trusted:
        import skops.io

        needed = skops.io.get_untrusted_types(data=skops.io.dumps(model))
        refused = [t for t in needed if not allow.is_trusted_type(t)]
        if refused:
            raise UserError(
                f"the model holds objects of type(s) {refused}, which sweeplab does not let skops "
                f"load: allow their modules with {env.ALLOW_TARGETS.name}=<module prefix>"
            )
        _trusted[structure] = sorted(needed)
    return _trusted[structure]


# Keys of a model config that are sweeplab's, not the estimator's.
MODEL_KEYS = ("_target_", "name")


def hyperparameters(model: DictConfig) -> dict[str, Any]:
    """The estimator's keyword arguments: every model field but sweeplab's own."""
    plain = OmegaConf.to_container(model, resolve=True)
    assert isinstance(plain, dict)
    return {str(k): v for k, v in plain.items() if k not in MODEL_KEYS}
