"""How a run's rows are split: a test part kept aside, then one holdout or k folds (no MLflow).

One record per kind (``SPLITS``): its config schema, and how it makes its folds. Every kind
works on every data source; what a kind cannot do with the data is a ConfigError naming the
``split.`` key, raised while the run is planned, before any store is touched.
"""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from omegaconf import MISSING, DictConfig, OmegaConf

from sweeplab.data import Data
from sweeplab.util.checks import Check, ConfigError, at_least, numpy_seed, one_of

if TYPE_CHECKING:
    import pandas as pd


# ---------------------------------------------------------------- schemas


def _share(value: Any, _: Any) -> bool:
    return isinstance(value, int | float) and 0 <= value < 1


@dataclass
class SplitConfig:
    """Base of every split option: the test part kept aside before anything is validated."""

    # holdout | kfold | time | group (each option sets its own).
    kind: str = "holdout"
    # Share of the rows kept aside as a test part before any validation rows are chosen. It
    # never ranks anything: a sweep's best job and a registered model are scored on it
    # (test_rmse, ...), next to the validation score they were chosen on. 0: no test part.
    test_share: float = 0.0

    CHECKS: ClassVar[dict[str, Check]] = {
        "test_share": Check(_share, "must be >= 0 and < 1 (0: no test part)"),
    }


@dataclass
class HoldoutConfig(SplitConfig):
    """One validation part: dataset.test_size of the rows, drawn with dataset.split_seed."""

    kind: str = "holdout"

    CHECKS: ClassVar[dict[str, Check]] = {**SplitConfig.CHECKS, "kind": one_of(["holdout"])}


@dataclass
class KFoldConfig(SplitConfig):
    """k folds, each validated once; stratified by class for classification."""

    kind: str = "kfold"
    k: int = 5
    # Shuffle the rows before they are cut into folds (with ``seed``); false keeps their order.
    shuffle: bool = True
    seed: int = 42

    CHECKS: ClassVar[dict[str, Check]] = {
        **SplitConfig.CHECKS,
        "kind": one_of(["kfold"]),
        "k": at_least(2),
        "seed": numpy_seed(),
    }


@dataclass
class TimeConfig(SplitConfig):
    """k folds in time order: each validates on rows later than every row it trained on."""

    kind: str = "time"
    # The column that orders the rows (dates, times or numbers); it need not be a feature.
    # null: the dataset's own (apple_sales: date).
    order: str | None = None
    k: int = 5
    # Rows left out between each fold's training rows and its validation rows.
    gap: int = 0

    CHECKS: ClassVar[dict[str, Check]] = {
        **SplitConfig.CHECKS,
        "kind": one_of(["time"]),
        "k": at_least(2),
        "gap": at_least(0),
    }


@dataclass
class GroupConfig(SplitConfig):
    """k folds that never split a group: all rows of a value of ``column`` fall in one fold."""

    kind: str = "group"
    # The column whose values are the groups (a customer, a store, a patient ...).
    column: str = MISSING
    k: int = 5
    # Deal groups to folds at random (with ``seed``); false balances the folds' sizes.
    shuffle: bool = False
    seed: int = 42

    CHECKS: ClassVar[dict[str, Check]] = {
        **SplitConfig.CHECKS,
        "kind": one_of(["group"]),
        "column": Check(lambda v, _: bool(str(v).strip()), "must name a column: split.column=..."),
        "k": at_least(2),
        "seed": numpy_seed(),
    }


# ---------------------------------------------------------------- the split rows


@dataclass(frozen=True, eq=False)
class Split:
    """The rows a run fits and scores on (equal only to itself).

    ``X``/``y`` are every row but the test part; each fold is a pair of positions into them
    (training, validation). A holdout has one fold and its model is the one fitted on it; with
    k folds the model is refit on all of ``X`` (``refit``), as GridSearchCV(refit=True) does.
    """

    X: "pd.DataFrame"
    y: "pd.Series"
    folds: tuple[tuple[np.ndarray, np.ndarray], ...]
    refit: bool
    X_test: "pd.DataFrame | None" = None
    y_test: "pd.Series | None" = None

    def fold(self, i: int) -> "tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]":
        """Fold ``i``'s training and validation rows: X_train, X_val, y_train, y_val."""
        train, val = self.folds[i]
        return self.X.iloc[train], self.X.iloc[val], self.y.iloc[train], self.y.iloc[val]

    @property
    def X_train(self) -> "pd.DataFrame":
        """The rows the logged model is fitted on."""
        return self.X if self.refit else self.X.iloc[self.folds[0][0]]

    @property
    def y_train(self) -> "pd.Series":
        """Their target."""
        return self.y if self.refit else self.y.iloc[self.folds[0][0]]

    @property
    def X_val(self) -> "pd.DataFrame | None":
        """A holdout's validation rows; None with k folds (every row validates once)."""
        return None if self.refit else self.X.iloc[self.folds[0][1]]

    @property
    def y_val(self) -> "pd.Series | None":
        """Their target."""
        return None if self.refit else self.y.iloc[self.folds[0][1]]

    def parts(self) -> "list[tuple[str, pd.DataFrame, pd.Series]]":
        """(context, features, target) of each part, as the run's dataset inputs name them."""
        made: list[tuple[str, pd.DataFrame, pd.Series]] = [("training", self.X_train, self.y_train)]
        if self.X_val is not None and self.y_val is not None:
            made.append(("validation", self.X_val, self.y_val))
        if self.X_test is not None and self.y_test is not None:
            made.append(("test", self.X_test, self.y_test))
        return made


def definition(cfg: DictConfig) -> dict[str, Any]:
    """The split's settings as plain values (kind first)."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(plain, dict)
    return {str(k): v for k, v in plain.items()}


def is_default(cfg: DictConfig) -> bool:
    """Whether ``cfg`` is the tutorial's split: one holdout and no test part.

    Runs on it keep the fingerprint and data digest they had before splits were a choice.
    """
    return str(cfg.kind) == "holdout" and float(cfg.test_share) == 0


def digest(data_digest: str, cfg: DictConfig) -> str:
    """The data digest runs are compared by: the data's, and for other splits their folds."""
    if is_default(cfg):
        return data_digest
    text = json.dumps([data_digest, definition(cfg)], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------- making the split


def _column(data: Data, key: str, name: str | None, what: str) -> "pd.Series":
    """The column ``name`` of the data (a feature or not), or a ConfigError on ``key``."""
    columns = [str(c) for c in data.frame.columns if c != data.target]
    if name is None or name not in columns:
        own = "; it has no order of its own" if name is None else ""
        raise ConfigError(
            key, "null" if name is None else name, f"must name the column that holds {what} "
            f"in {data.name}{own}: its columns are {columns}",
        )  # fmt: skip
    values = data.frame[name]
    missing = int(values.isna().sum())
    if missing:
        raise ConfigError(
            key, name, f"column {name!r} of {data.name} has {missing} row(s) without a value: "
            "fill them, or leave those rows out of the file",
        )  # fmt: skip
    return values


def _order(data: Data, cfg: DictConfig) -> np.ndarray:
    """Positions of the rows in time order (stable: ties keep the file's order)."""
    import pandas as pd

    name = cfg.order if cfg.order is not None else data.order
    values = _column(data, "split.order", name, "the rows' times (dates, times or numbers)")
    if not (
        pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values)
    ) or pd.api.types.is_bool_dtype(values):
        parsed = pd.to_datetime(values, errors="coerce", format="mixed")
        if parsed.isna().any():
            bad = values[parsed.isna()].iloc[0]
            raise ConfigError(
                "split.order", name, f"column {name!r} of {data.name} must hold dates, times or "
                f"numbers; it holds {bad!r}",
            )  # fmt: skip
        values = parsed
    return np.argsort(values.to_numpy(), kind="stable")


def _folds_error(key: str, value: Any, error: ValueError) -> ConfigError:
    return ConfigError(key, value, str(error).splitlines()[0])


@dataclass(frozen=True)
class Rows:
    """The rows left for the folds (the test part taken out), and what decides their folds."""

    data: Data
    cfg: DictConfig
    X: "pd.DataFrame"
    y: "pd.Series"
    # Their positions in data.frame.
    positions: np.ndarray
    stratify: bool
    # The holdout's validation share and seed: dataset.test_size and dataset.split_seed.
    holdout: tuple[float, int]


def _least_class(y: "pd.Series") -> tuple[str, int]:
    counts = y.value_counts()
    return str(counts.index[-1]), int(counts.iloc[-1])


def _check_k(rows: Rows) -> None:
    """More folds than rows (or than rows of a class, when stratified) is a ConfigError."""
    k = rows.cfg.k
    if k > len(rows.y):
        raise ConfigError("split.k", k, f"must be <= the {len(rows.y)} rows left to make folds of")
    if rows.stratify:
        label, count = _least_class(rows.y)
        if k > count:
            raise ConfigError(
                "split.k", k, f"must be <= {count}: class {label!r} of {rows.data.name} has "
                f"{count} row(s) to make folds of, and each fold validates on every class",
            )  # fmt: skip


Folds = tuple[tuple[np.ndarray, np.ndarray], ...]


def _holdout(rows: Rows) -> Folds:
    from sklearn.model_selection import train_test_split

    size, seed = rows.holdout
    try:
        # The positions train_test_split takes its rows at: X.iloc of them are the
        # tutorial's X_train and X_val, row for row in the same order.
        train, val = train_test_split(
            np.arange(len(rows.X)),
            test_size=size,
            random_state=seed,
            stratify=rows.y if rows.stratify else None,
        )
    except ValueError as e:
        raise _folds_error("dataset.test_size", size, e) from None
    return ((np.asarray(train), np.asarray(val)),)


def _kfold(rows: Rows) -> Folds:
    from sklearn.model_selection import KFold, StratifiedKFold

    _check_k(rows)
    cfg = rows.cfg
    kind = StratifiedKFold if rows.stratify else KFold
    splitter = kind(
        n_splits=cfg.k, shuffle=cfg.shuffle, random_state=cfg.seed if cfg.shuffle else None
    )
    return tuple(splitter.split(rows.X, rows.y))


def _time(rows: Rows) -> Folds:
    from sklearn.model_selection import TimeSeriesSplit

    cfg = rows.cfg
    try:
        return tuple(TimeSeriesSplit(n_splits=cfg.k, gap=cfg.gap).split(rows.X))
    except ValueError as e:
        raise ConfigError(
            "split.k", cfg.k, f"{len(rows.X)} rows cannot make {cfg.k} time-ordered folds with "
            f"split.gap={cfg.gap}: {str(e).splitlines()[0]}",
        ) from None  # fmt: skip


def _group(rows: Rows) -> Folds:
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    cfg = rows.cfg
    groups = rows.data.frame[cfg.column].to_numpy()[rows.positions]
    count = len(set(groups.tolist()))
    if cfg.k > count:
        raise ConfigError(
            "split.k", cfg.k, f"must be <= the {count} groups of column {cfg.column!r} left to "
            "make folds of: each fold validates on groups of its own",
        )  # fmt: skip
    seed = cfg.seed if cfg.shuffle else None
    splitter: Any
    if rows.stratify:
        _check_k(rows)
        splitter = StratifiedGroupKFold(n_splits=cfg.k, shuffle=cfg.shuffle, random_state=seed)
    else:
        splitter = GroupKFold(n_splits=cfg.k, shuffle=cfg.shuffle, random_state=seed)
    try:
        return tuple(splitter.split(rows.X, rows.y, groups))
    except ValueError as e:
        raise _folds_error("split.k", cfg.k, e) from None


@dataclass(frozen=True)
class Kind:
    """One kind of split: its schema, and how it makes folds of the rows left for them."""

    name: str
    schema: type[SplitConfig]
    folds: Callable[[Rows], Folds]
    # The test part is the latest rows (time order), not drawn at random.
    ordered: bool = False
    # The test part never splits a group.
    grouped: bool = False


SPLITS = {
    kind.name: kind
    for kind in (
        Kind("holdout", HoldoutConfig, _holdout),
        Kind("kfold", KFoldConfig, _kfold),
        Kind("time", TimeConfig, _time, ordered=True),
        Kind("group", GroupConfig, _group, grouped=True),
    )
}


def _test_part(
    data: Data, cfg: DictConfig, kind: Kind, order: np.ndarray, stratify: bool, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Positions in data.frame of the rows kept for the folds, and of the test part."""
    from sklearn.model_selection import GroupShuffleSplit, train_test_split

    share = float(cfg.test_share)
    if share == 0:
        return order, order[:0]
    if kind.ordered:
        cut = len(order) - max(1, round(share * len(order)))
        if cut < 1:
            raise ConfigError("split.test_share", share, f"leaves no rows of {data.name} to fit on")
        return order[:cut], order[cut:]
    try:
        if kind.grouped:
            groups = data.frame[cfg.column].to_numpy()
            splitter = GroupShuffleSplit(n_splits=1, test_size=share, random_state=seed)
            fit, test = next(splitter.split(order, groups=groups))
            return order[fit], order[test]
        y = data.frame[data.target]
        fit, test = train_test_split(
            order, test_size=share, random_state=seed, stratify=y if stratify else None
        )
    except ValueError as e:
        raise _folds_error("split.test_share", share, e) from None
    return np.asarray(fit), np.asarray(test)


def make(data: Data, cfg: DictConfig, *, holdout: tuple[float, int], stratify: bool) -> Split:
    """Split ``data`` as ``cfg`` (the run's ``split`` node) says; ConfigError if it cannot.

    ``holdout``: dataset.test_size and dataset.split_seed, the holdout's validation part.
    """
    kind = SPLITS[str(cfg.kind)]
    if kind.grouped:
        _column(data, "split.column", cfg.column, "the groups")
    if stratify:
        counts = data.frame[data.target].value_counts()
        single = [str(c) for c, n in counts.items() if n < 2]
        if single:
            raise ConfigError(
                "dataset.target", data.target, f"class(es) {single[:10]} of {data.name} have a "
                "single row; a stratified split needs two of each: drop those rows or merge the "
                "classes",
            )  # fmt: skip
    order = _order(data, cfg) if kind.ordered else np.arange(len(data.frame))
    seed = int(cfg.seed) if "seed" in cfg else holdout[1]
    fit, test = _test_part(data, cfg, kind, order, stratify, seed)
    features = data.frame[data.features]
    target = data.frame[data.target]
    whole = len(test) == 0 and not kind.ordered
    # The tutorial's holdout takes the rows as they are (frame[...] itself), and so gets
    # train_test_split's very rows.
    X = features if whole else features.iloc[fit]
    y = target if whole else target.iloc[fit]
    rows = Rows(data, cfg, X, y, fit, stratify, holdout)
    return Split(
        X=X,
        y=y,
        folds=kind.folds(rows),
        refit=kind.name != "holdout",
        X_test=None if len(test) == 0 else features.iloc[test],
        y_test=None if len(test) == 0 else target.iloc[test],
    )


def holdout(data: Data, test_size: float, seed: int, *, stratify: bool = False) -> Split:
    """The tutorial's split of ``data``: ``test_size`` of the rows validate, drawn with ``seed``."""
    return make(
        data, OmegaConf.structured(HoldoutConfig), holdout=(test_size, seed), stratify=stratify
    )
