"""What every data source shares: the split settings, the loaded data, and the source record."""

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from omegaconf import DictConfig

from sweeplab.util.checks import Check, ConfigError, between, numpy_seed, raise_all
from sweeplab.util.errors import warn

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class DatasetConfig:
    """Base of every dataset schema: how rows are split into training and validation."""

    # Share of rows held out for validation.
    test_size: float = 0.2
    # Seed of the train/validation split.
    split_seed: int = 42

    CHECKS: ClassVar[dict[str, Check]] = {"test_size": between(0, 1), "split_seed": numpy_seed()}


@dataclass(frozen=True)
class Data:
    """A dataset loaded once: its rows, which column is predicted, and what it is."""

    frame: "pd.DataFrame"
    target: str
    # Feature columns, in the file's order; those encoded as categories are in ``categorical``,
    # each with its encoding: onehot, ordinal, target or native (sweeplab.data.table.Encoding).
    features: list[str]
    categorical: dict[str, str]
    task: str
    # The dataset's name in MLflow, and where it came from (a file path; None when generated).
    name: str
    source: str | None
    # sha256 of the content trained on (a file's bytes), so a changed file changes the run's
    # config fingerprint.
    digest: str
    # The column that orders the rows in time, when the source knows one (split=time uses it).
    order: str | None = None
    # What is wrong with the file, found while reading it: plan.make raises these together
    # with what is wrong with the model for it (features without the unusable columns).
    problems: tuple[ConfigError, ...] = ()
    # One-hot encoding's most columns per text column: the rarest values share the last.
    max_categories: int = 1000


@dataclass(frozen=True)
class Source:
    """One data source: its config schema, its checks and how to load it."""

    # `dataset=<option>` files extend `/<name>_dataset_schema`.
    name: str
    schema: type[DatasetConfig]
    # Reads the data (once) and describes it; raises UserError for data that cannot be used.
    load: Callable[[DictConfig], Data]
    # The task, as cheaply as the source can tell it (a sweep's parent needs it, not the data).
    task: Callable[[DictConfig], str]
    # Checks across fields, run after each field's own CHECKS.
    check: Callable[[DictConfig], None] = lambda cfg: None
    # Rewrites values with several spellings into one (in place), before they are logged.
    normalize: Callable[[DictConfig], None] = lambda cfg: None
    # Keys that say where the data is rather than what it is: the fingerprint uses the
    # content digest instead.
    locators: tuple[str, ...] = ()
    # The data's name, from its config alone: an experiment is named after it when the user
    # names none (conf/experiment/named_after_data.yaml); None while the config lacks it.
    label: Callable[[DictConfig], str | None] = lambda cfg: None
    # Keys added after runs were logged without them: left out of the fingerprint while they
    # hold these values, so that those runs keep their fingerprints (and stay reusable).
    added_later: Mapping[str, Any] = field(default_factory=dict)


# Most distinct values a text column is one-hot encoded with unless an encoding is chosen
# for it: each value becomes a column of the model's (dense) input.
MAX_CATEGORIES = 1000


def frame_digest(frame: "pd.DataFrame") -> str:
    """sha256 of a DataFrame's values, index, column names and types."""
    import pandas as pd

    hashed = pd.util.hash_pandas_object(frame, index=True).to_numpy()
    header = repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode()
    return hashlib.sha256(header + hashed.tobytes()).hexdigest()


def is_numeric_target(values: "pd.Series") -> bool:
    """Numbers (not booleans) are regressed; strings, categories and booleans are classified."""
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values))


def _holds_dates(values: "pd.Series") -> bool:
    """Whether a text column holds dates or times (as CSV files write them)."""
    import pandas as pd

    sample = values.dropna().head(50)
    if sample.empty or not all(isinstance(v, str) for v in sample):
        return False
    if not sample.str.contains(r"\d[-/:]\d", regex=True).all():
        return False
    parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().all())


def describe(
    frame: "pd.DataFrame",
    *,
    target: str,
    drop: Sequence[str],
    task: str,
    name: str,
    source: str | None,
    digest: str,
    where: str,
    order: str | None = None,
    encoding: str = "auto",
    encode: Mapping[str, str] | None = None,
    max_categories: int = MAX_CATEGORIES,
) -> Data:
    """Check a loaded table's columns and sort them into target and features.

    ``where`` names the data in messages (``dataset.path='sales.csv'``). Rows whose target is
    missing are dropped with a warning; ``task`` may be ``auto``. Text columns are encoded as
    ``encoding`` says, or as ``encode`` says for a column (which may name a number column, for
    codes such as zip codes); ``auto`` one-hot encodes up to ``max_categories`` values and asks
    for a choice above.
    """
    import pandas as pd

    columns = [str(c) for c in frame.columns]
    frame.columns = pd.Index(columns)
    if target not in columns:
        raise ConfigError(
            "dataset.target", target, f"not a column of {where}: columns are {columns}"
        )
    # Everything wrong with the file is found in one pass, one line each (sweeplab.run.plan
    # raises them with the model's own problems); only what leaves nothing to check stops here.
    problems: list[ConfigError] = []
    missing = [c for c in drop if c not in columns]
    if missing:
        problems.append(ConfigError(
            "dataset.drop", list(drop), f"{missing} not column(s) of {where}: columns are {columns}"
        ))  # fmt: skip
    if target in drop:
        problems.append(ConfigError("dataset.drop", list(drop), f"holds the target {target!r}"))
    features = [c for c in columns if c != target and c not in drop]
    if not features:
        raise_all([*problems, ConfigError(
            "dataset.drop", list(drop), f"leaves no feature columns in {where}"
        )])  # fmt: skip
    unknown_target = int(frame[target].isna().sum())
    if unknown_target == len(frame):
        raise_all([*problems, ConfigError("dataset.target", target, f"has no values in {where}")])
    if unknown_target:
        warn(f"{unknown_target} of {len(frame)} rows of {where} have no {target!r}: left out")
        frame = frame[frame[target].notna()].reset_index(drop=True)
    chosen = {str(c): str(e) for c, e in (encode or {}).items() if str(e) != "auto"}
    strangers = [c for c in chosen if c not in features]
    if strangers:
        problems.append(ConfigError(
            "dataset.encode", dict(encode or {}), f"{strangers} not feature column(s) of {where}: "
            f"features are {features}",
        ))  # fmt: skip
    text, unusable = _text_columns(frame, [c for c in features if c not in chosen])
    counts = {c: int(frame[c].nunique()) for c in text}
    # A different value in every row is an id or free text: no encoding helps a model there,
    # whatever the encoding (a column named in dataset.encode is the user's explicit choice).
    ids = [
        c for c in text if counts[c] > max_categories and counts[c] == int(frame[c].notna().sum())
    ]
    undecided = [c for c in text if encoding == "auto" and counts[c] > max_categories]
    undecided = [c for c in undecided if c not in ids]
    wide = [*ids, *undecided]
    left_out = [*drop, *unusable, *ids]
    if unusable:
        problems.append(ConfigError(
            "dataset.drop", list(drop), f"column(s) {unusable} of {where} hold dates, times or "
            f"other values that cannot be features: leave them out with "
            f"'dataset.drop=[{','.join(left_out)}]'",
        ))  # fmt: skip
    if ids:
        problems.append(ConfigError(
            "dataset.drop", list(drop), f"text column(s) {ids} of {where} hold a different value "
            f"in every row (ids or free text; to encode one anyway, name it in dataset.encode): "
            f"leave them out with "
            f"'dataset.drop=[{','.join(left_out)}]'",
        ))  # fmt: skip
    if undecided:
        shown = ", ".join(f"{c} ({counts[c]:,} values)" for c in undecided)
        example = ",".join(f"{c}:target" for c in undecided)
        problems.append(ConfigError(
            "dataset.encode", dict(encode or {}), f"text column(s) {shown} of {where} have more "
            f"distinct values than dataset.max_categories={max_categories:,}: choose an encoding "
            f"for each, e.g. '+dataset.encode={{{example}}}' (target, ordinal, native, or onehot: "
            f"{_commonest(max_categories - 1)} and one 'other'), or leave them out "
            f"with 'dataset.drop=[{','.join([*left_out, *undecided])}]'",
        ))  # fmt: skip
    default = "onehot" if encoding == "auto" else encoding
    categorical = {
        c: chosen.get(c, default) for c in features if c in chosen or (c in text and c not in wide)
    }
    # The model is checked against the columns that can be features.
    features = [c for c in features if c not in unusable and c not in wide]
    if task == "auto":
        task = "regression" if is_numeric_target(frame[target]) else "classification"
    return Data(
        # Every column: a split may order or group the rows by one that is not a feature.
        frame=frame,
        target=target,
        features=features,
        categorical=categorical,
        task=task,
        name=name,
        source=source,
        digest=digest,
        order=order,
        problems=tuple(problems),
        max_categories=max_categories,
    )


def _commonest(n: int) -> str:
    return "the commonest value" if n == 1 else f"the {n:,} commonest values"


def _text_columns(frame: "pd.DataFrame", columns: list[str]) -> tuple[list[str], list[str]]:
    """Of ``columns``, those holding categories (text, booleans) and those no model takes."""
    import pandas as pd

    text, unusable = [], []
    for column in columns:
        values = frame[column]
        if pd.api.types.is_bool_dtype(values) or isinstance(values.dtype, pd.CategoricalDtype):
            text.append(column)
        elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_complex_dtype(values):
            continue
        elif (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)) and (
            not _holds_dates(values)
        ):
            text.append(column)
        else:
            unusable.append(column)
    return text, unusable


def resolved_items(node: DictConfig) -> dict[str, Any]:
    """A dataset node's values as plain Python (lists as lists)."""
    from omegaconf import OmegaConf

    plain = OmegaConf.to_container(node, resolve=True, enum_to_str=True)
    assert isinstance(plain, dict)
    return {str(k): v for k, v in plain.items()}
