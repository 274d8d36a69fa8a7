"""Batch scoring: a registered or logged model, a table file in, the same table with a
prediction column out (`sweeplab-tools predict`)."""

from pathlib import Path
from typing import TYPE_CHECKING

from sweeplab.data.table import file_format, read_table
from sweeplab.util.checks import ConfigError
from sweeplab.util.errors import UserError

if TYPE_CHECKING:
    import pandas as pd


def _read(path: Path) -> "pd.DataFrame":
    """The input table (csv, tsv, compressed csv or parquet, by its suffix)."""
    if not path.is_file():
        raise UserError(f"--input {str(path)!r}: no such file")
    try:
        kind, compression = file_format(path)
    except ConfigError as e:
        raise UserError(f"--input {str(path)!r}: {e.allowed}") from None
    try:
        return read_table(path, kind, compression)
    except Exception as e:
        raise UserError(f"--input {str(path)!r} cannot be read as {kind}: {e}") from None


def _write(frame: "pd.DataFrame", path: Path) -> None:
    """Write ``frame`` as the output's suffix says: .parquet, .tsv, else csv (compressed by
    its last suffix, as pandas reads it)."""
    try:
        kind, _ = file_format(path)
    except ConfigError as e:
        raise UserError(f"--output {str(path)!r}: {e.allowed}") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, sep="\t" if kind == "tsv" else ",", index=False)


def _features(frame: "pd.DataFrame", model: object, path: Path) -> "pd.DataFrame":
    """The columns the model's signature asks for, in its order; one line for a missing one."""
    schema = model.metadata.get_input_schema()  # type: ignore[attr-defined]
    if schema is None or not schema.has_input_names():
        return frame
    names = schema.input_names()
    missing = [n for n in names if n not in frame.columns]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise UserError(
            f"--input {str(path)!r} has no column {missing[0]!r}{more}, which the model's "
            f"signature needs; it needs {names}"
        )
    return frame[names]


# What each MLflow column type is as a numpy dtype, for the types a CSV reader may guess
# differently from the training file's (whole numbers in a float column, say).
_NUMPY_TYPES = {
    "double": "float64",
    "float": "float32",
    "long": "int64",
    "integer": "int32",
    "boolean": "bool",
}


def _converted(values: "pd.Series", wanted: str) -> "tuple[pd.Series, pd.Series]":
    """``values`` as the signature's type ``wanted``, and where a value could not be kept."""
    import numpy as np
    import pandas as pd

    if wanted == "boolean":
        words = values.astype(str).str.strip().str.lower()
        converted = words.map({"true": True, "false": False, "1": True, "0": False, "1.0": True,
                               "0.0": False})  # fmt: skip
        return converted, values.notna() & converted.isna()
    numbers = pd.to_numeric(values, errors="coerce")
    lost = values.notna() & numbers.isna()  # text that is not a number
    if wanted in ("long", "integer"):
        lost |= values.isna() | (numbers.notna() & (numbers != np.floor(numbers)))
        return numbers.where(~lost, 0).astype(_NUMPY_TYPES[wanted]), lost
    converted = numbers.astype(_NUMPY_TYPES[wanted])
    lost |= numbers.notna() & (converted.astype("float64") != numbers.astype("float64"))
    return converted, lost


def _conformed(frame: "pd.DataFrame", model: object, path: Path) -> "pd.DataFrame":
    """``frame`` with each column in the type the model's signature has, where no value
    changes: whole numbers as floats, numbers read as text, 0/1 as booleans. A value that
    would change is one line naming the column, the types and the value."""
    schema = model.metadata.get_input_schema()  # type: ignore[attr-defined]
    if schema is None or not schema.has_input_names():
        return frame
    fixed = frame.copy()
    for spec in schema.inputs:
        name, wanted = spec.name, str(getattr(spec.type, "name", spec.type))
        if name not in fixed.columns or wanted not in _NUMPY_TYPES:
            continue
        values = fixed[name]
        if str(values.dtype) == _NUMPY_TYPES[wanted]:
            continue
        converted, lost = _converted(values, wanted)
        if lost.any():
            bad = values[lost].iloc[0]
            bad = bad.item() if hasattr(bad, "item") else bad  # a numpy scalar as Python's
            shown = "a missing value" if bad != bad or bad is None else repr(bad)
            raise UserError(
                f"--input {str(path)!r}: column {name!r} holds {values.dtype} values and the "
                f"model's signature wants {wanted} ({_NUMPY_TYPES[wanted]}); {shown} would "
                "not stay the same value"
            )
        fixed[name] = converted
    return fixed


def predict(
    model_uri: str,
    source: Path,
    target: Path,
    column: str = "prediction",
    *,
    proba: bool = False,
) -> str:
    """Score ``source`` with ``model_uri`` into ``target``; return the line to print.

    ``proba``: a classifier's class probabilities too, one column ``<column>_<class>`` each.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    frame = _read(source)
    if column in frame.columns:
        raise UserError(
            f"--input {str(source)!r} has a column {column!r} already: name the predictions' "
            "column with --column NAME"
        )
    try:
        model = mlflow.pyfunc.load_model(model_uri)
    except MlflowException as e:
        raise UserError(
            f"cannot load {model_uri}: {e.message.splitlines()[0]}{_hint(model_uri)}"
        ) from None
    features = _conformed(_features(frame, model, source), model, source)
    try:
        predictions = model.predict(features)
    except MlflowException as e:  # the signature's other checks
        shown = " ".join(line.strip() for line in e.message.splitlines() if line.strip())
        raise UserError(f"{model_uri} refuses {str(source)!r}: {shown[:300]}") from None
    scored = frame.copy()
    scored[column] = list(predictions)
    if proba:
        for label, values in _probabilities(model_uri, features).items():
            scored[f"{column}_{label}"] = values
    _write(scored, target)
    return (
        f"predicted {len(scored):,} rows of {str(source)!r} with {model_uri}{_which(model_uri)} "
        f"-> {str(target)!r} (column {column!r}" + (", and one per class" if proba else "") + ")"
    )


def _probabilities(model_uri: str, features: "pd.DataFrame") -> "dict[str, list[float]]":
    """Each class's probability for each row, by class label (predict_proba)."""
    import mlflow

    estimator = mlflow.sklearn.load_model(model_uri)
    if not hasattr(estimator, "predict_proba"):
        raise UserError(
            f"--proba: {model_uri} ({type(estimator).__name__}) gives no class probabilities; "
            "leave --proba out for its predictions"
        )
    table = estimator.predict_proba(features)
    return {str(label): list(table[:, i]) for i, label in enumerate(estimator.classes_)}


def _which(model_uri: str) -> str:
    """`` (apple_demand v7, run <id>)`` for a registered model's URI; else nothing."""
    from mlflow import MlflowClient

    name, _, which = model_uri.removeprefix("models:/").partition("@")
    try:
        if which:
            version = MlflowClient().get_model_version_by_alias(name, which)
        elif model_uri.startswith("models:/") and "/" in name and not name.startswith("m-"):
            name, _, number = name.rpartition("/")
            version = MlflowClient().get_model_version(name, number)
        else:
            return ""
    except Exception:  # it loaded; naming the version is a courtesy
        return ""
    return f" ({name} v{version.version}, run {version.run_id})"


def _hint(model_uri: str) -> str:
    """For a ``runs:/<id>/<name>`` that names no model: the names the run's models have."""
    from mlflow import MlflowClient

    if not model_uri.startswith("runs:/"):
        return ""
    run_id = model_uri.removeprefix("runs:/").split("/")[0]
    try:
        run = MlflowClient().get_run(run_id)
        outputs = run.outputs.model_outputs if run.outputs else []
        names = [MlflowClient().get_logged_model(o.model_id).name for o in outputs]
        ids = [o.model_id for o in outputs]
    except Exception:
        return ""
    if not names:
        return ""
    return f"; run {run_id} logged its model as {names[0]!r}: models:/{ids[0]} names it too"
