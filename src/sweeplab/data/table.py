"""`dataset=table`: the user's own CSV or Parquet file, read once per run."""

import hashlib
import io
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from omegaconf import MISSING, DictConfig, OmegaConf

from sweeplab.data.base import (
    MAX_CATEGORIES,
    Data,
    DatasetConfig,
    Source,
    describe,
    is_numeric_target,
)
from sweeplab.util.checks import Check, ConfigError, at_least, not_blank
from sweeplab.util.errors import UserError
from sweeplab.util.launch import launch_dir

if TYPE_CHECKING:
    import pandas as pd

# Suffixes pandas compresses and decompresses by itself.
_COMPRESSION = {".gz": "gzip", ".bz2": "bz2", ".zip": "zip", ".xz": "xz", ".zst": "zstd"}
_CSV = (".csv", ".tsv", ".txt")
_PARQUET = (".parquet", ".pq")


class TaskChoice(Enum):
    """What a table's target asks for; auto decides from the target's values."""

    auto = "auto"
    regression = "regression"
    classification = "classification"


class Encoding(Enum):
    """How a column becomes numbers the model takes (sweeplab.model.estimators builds each)."""

    # onehot for a column of at most max_categories values; a wider one stops the run, named.
    auto = "auto"
    # A 0/1 column per value; beyond max_categories values the rarest share one 'other'.
    onehot = "onehot"
    # One column of codes.
    ordinal = "ordinal"
    # The value's cross-fitted mean target (scikit-learn's TargetEncoder).
    target = "target"
    # Codes the model splits as categories itself (HistGradientBoosting, LightGBM, XGBoost).
    native = "native"


@dataclass
class TableConfig(DatasetConfig):
    """A CSV or Parquet file, one row per example, one column predicted."""

    # The file: .csv, .tsv (optionally .gz/.bz2/.zip/.xz/.zst) or .parquet; relative paths
    # are relative to the directory sweeplab is launched from.
    path: str = MISSING
    # The column to predict.
    target: str = MISSING
    # Columns that are not features (ids, dates, leaks).
    drop: list[str] = field(default_factory=list)
    # regression | classification | auto: classification when the target is not numeric
    # (text, categories, booleans), regression otherwise.
    task: TaskChoice = TaskChoice.auto
    # How text columns become numbers: auto | onehot | ordinal | target | native.
    encoding: Encoding = Encoding.auto
    # Per column, over `encoding`; may name number columns that are codes ({zip: target}).
    encode: dict[str, Encoding] = field(default_factory=dict)
    # auto one-hot encodes text columns with at most this many values; onehot keeps this many
    # columns per text column, the rarest values sharing the last.
    max_categories: int = MAX_CATEGORIES

    CHECKS: ClassVar[dict[str, Check]] = {
        **DatasetConfig.CHECKS,
        "path": not_blank(),
        "target": not_blank(),
        "max_categories": at_least(2),
    }


def resolve(path: str) -> Path:
    """``path`` as an absolute path; relative ones start from the launch directory."""
    given = Path(path.removeprefix("file://")).expanduser()
    return given if given.is_absolute() else Path(launch_dir()) / given


def file_format(path: Path) -> tuple[str, str | None]:
    """("csv" | "tsv" | "parquet", compression) from the file's suffixes."""
    suffixes = [s.lower() for s in path.suffixes]
    compression = _COMPRESSION.get(suffixes[-1]) if suffixes else None
    if compression:
        suffixes = suffixes[:-1]
    kind = suffixes[-1] if suffixes else ""
    if kind in _CSV and kind != ".tsv":
        return "csv", compression
    if kind == ".tsv":
        return "tsv", compression
    if kind in _PARQUET and compression is None:
        return "parquet", None
    raise ConfigError(
        "dataset.path",
        str(path),
        "must name a .csv, .tsv or .parquet file (CSV may be compressed: .csv.gz, .csv.zip, ...)",
    )


def read_table(
    raw: bytes | Path, kind: str, compression: str | None, **kwargs: Any
) -> "pd.DataFrame":
    """A table from a file's path or bytes, read as ``file_format`` named it."""
    import pandas as pd

    source = io.BytesIO(raw) if isinstance(raw, bytes) else raw
    if kind == "parquet":
        return pd.read_parquet(source, **kwargs)
    return pd.read_csv(
        source, sep="\t" if kind == "tsv" else ",", compression=compression, **kwargs
    )


def _open(cfg: DictConfig) -> tuple[Path, str, str | None]:
    path = resolve(str(cfg.path))
    kind, compression = file_format(path)
    if not path.exists():
        raise ConfigError("dataset.path", str(cfg.path), f"no such file: {path}")
    if not path.is_file():
        raise ConfigError("dataset.path", str(cfg.path), f"not a file: {path}")
    return path, kind, compression


def _unreadable(cfg: DictConfig, kind: str, error: Exception) -> ConfigError:
    import pandas as pd

    if isinstance(error, pd.errors.EmptyDataError):
        return ConfigError("dataset.path", str(cfg.path), "the file is empty")
    lines = str(error).strip().splitlines()
    why = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    return ConfigError("dataset.path", str(cfg.path), f"cannot be read as {kind.upper()} ({why})")


def _load(cfg: DictConfig) -> Data:
    path, kind, compression = _open(cfg)
    try:
        # Read once: the same bytes are hashed and parsed.
        raw = path.read_bytes()
    except OSError as e:
        raise UserError(f"dataset.path={cfg.path!r} cannot be read: {e.strerror}") from None
    if not raw:
        raise ConfigError("dataset.path", str(cfg.path), "the file is empty")
    try:
        frame = read_table(raw, kind, compression)
    except Exception as e:
        raise _unreadable(cfg, kind, e) from None
    if frame.empty:
        raise ConfigError("dataset.path", str(cfg.path), "the file has no rows")
    return describe(
        frame,
        target=str(cfg.target),
        drop=[str(c) for c in cfg.drop],
        task=cfg.task.value,
        name=path.name.split(".")[0],
        source=str(path),
        digest=hashlib.sha256(raw).hexdigest(),
        where=f"{cfg.path}",
        encoding=cfg.encoding.value,
        encode={str(c): e.value for c, e in cfg.encode.items()},
        max_categories=int(cfg.max_categories),
    )


def _task(cfg: DictConfig) -> str:
    if cfg.task != TaskChoice.auto:
        return str(cfg.task.value)
    path, kind, compression = _open(cfg)
    target = str(cfg.target)
    try:
        if kind == "parquet":
            values = read_table(path, kind, compression, columns=[target])[target]
        else:
            values = read_table(path, kind, compression, usecols=[target])[target]
    except (KeyError, ValueError):  # no such column: the full load names the columns
        return str(_load(cfg).task)
    except Exception as e:
        raise _unreadable(cfg, kind, e) from None
    return "regression" if is_numeric_target(values.dropna()) else "classification"


def _label(cfg: DictConfig) -> str | None:
    """The file's name without its suffixes: 'customers' for data/customers.csv.gz."""
    if OmegaConf.is_missing(cfg, "path"):
        return None
    return Path(str(cfg.path).removeprefix("file://")).name.split(".")[0].strip() or None


SOURCE = Source(
    name="table",
    schema=TableConfig,
    load=_load,
    task=_task,
    locators=("path",),
    label=_label,
    added_later={"encoding": "auto", "encode": {}, "max_categories": MAX_CATEGORIES},
)
