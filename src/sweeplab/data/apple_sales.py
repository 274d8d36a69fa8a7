"""`dataset=apple_sales`: the tutorial's synthetic apple demand, reproducible by seed and date."""

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, ClassVar

from omegaconf import DictConfig

from sweeplab.data.base import Data, DatasetConfig, Source, describe, frame_digest
from sweeplab.util.checks import Check, ConfigError, at_least, numpy_seed, one_of

if TYPE_CHECKING:
    import pandas as pd

# The earliest day a generated calendar may reach (datetime's own lower bound).
FIRST_DAY = datetime(1, 1, 1)
TARGET = "demand"
NOT_FEATURES = ("date",)


def parse_end_date(end_date: str | date | datetime) -> datetime:
    """Turn ``end_date`` (ISO date, datetime or ``"now"``) into the last day of the data."""
    if isinstance(end_date, datetime):
        return end_date
    if isinstance(end_date, date):
        return datetime(end_date.year, end_date.month, end_date.day)
    if end_date == "now":
        return datetime.now().replace(microsecond=0)
    try:
        parsed = datetime.fromisoformat(end_date)
    except ValueError:
        raise ValueError(f"end_date={end_date!r} is not a date: use YYYY-MM-DD or 'now'") from None
    if parsed.tzinfo is not None:
        # Rows are calendar days; a zone would shift them silently.
        raise ValueError(f"end_date={end_date!r} has a time zone: use a plain date")
    return parsed


def max_rows(end: datetime) -> int:
    """The most daily rows that fit between year 1 and ``end``."""
    return (end - FIRST_DAY).days + 1


def apple_sales(
    n_rows: int = 5000,
    base_demand: int = 1000,
    seed: int = 9999,
    end_date: str | date | datetime = "now",
) -> "pd.DataFrame":
    """Daily apple demand with seasonality, promotions and inflation, as in the MLflow tutorial."""
    import numpy as np
    import pandas as pd

    end = parse_end_date(end_date)
    if n_rows < 1:
        raise ValueError(f"n_rows={n_rows} must be at least 1")
    if n_rows > max_rows(end):
        raise ValueError(
            f"n_rows={n_rows} reaches before year 1 from end_date {end:%Y-%m-%d}: "
            f"at most {max_rows(end)} rows fit"
        )
    # A private RandomState draws the same stream as the tutorial's np.random.seed(seed)
    # without touching the global RNG other code may rely on.
    rng = np.random.RandomState(seed)
    dates = pd.date_range(end=end, periods=n_rows, freq="D", unit="us")
    month = dates.month.to_numpy(dtype=np.int64)

    # Draw in the tutorial's order so the values match it exactly.
    df = pd.DataFrame(
        {
            "date": dates,
            "average_temperature": rng.uniform(10, 35, n_rows),
            "rainfall": rng.exponential(5, n_rows),
            "weekend": (dates.day_of_week >= 5).astype(np.int64),
            "holiday": rng.choice([0, 1], n_rows, p=[0.97, 0.03]),
            "price_per_kg": rng.uniform(0.5, 3, n_rows),
        }
    )
    years = dates.year.to_numpy()
    inflation = 1 + (years - years.min()) * 0.03
    # Apple harvests peak around March and September.
    harvest_effect = np.sin(2 * np.pi * (month - 3) / 12) + np.sin(2 * np.pi * (month - 9) / 12)
    df["price_per_kg"] = df["price_per_kg"] - harvest_effect * 0.5
    # Promotions run in the month after each harvest peak, and at random otherwise.
    df["promo"] = np.where(np.isin(month, [4, 10]), 1, rng.choice([0, 1], n_rows, p=[0.85, 0.15]))
    df["demand"] = (
        base_demand
        - df["price_per_kg"] * 50
        + harvest_effect * 50
        + df["promo"] * 200
        + df["weekend"] * 300
        + rng.normal(0, 50, n_rows)
    ) * inflation
    df["previous_days_demand"] = df["demand"].shift(1).bfill()
    return df


def _is_date(value: object, _: object) -> bool:
    try:
        parse_end_date(value)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return False
    return True


@dataclass
class AppleSalesConfig(DatasetConfig):
    """The tutorial's generator and its arguments."""

    # The generator (one for now).
    name: str = "apple_sales"
    # Daily rows, ending at end_date.
    n_rows: int = 5000
    # Demand on an ordinary day before effects and noise.
    base_demand: int = 1000
    # Seed of the generator's own random state.
    seed: int = 9999
    # Last day of the data: YYYY-MM-DD, or "now" for the tutorial's moving date.
    end_date: str = "2023-11-01"

    CHECKS: ClassVar[dict[str, Check]] = {
        **DatasetConfig.CHECKS,
        "name": one_of(["apple_sales"]),
        "n_rows": at_least(2),
        "base_demand": at_least(0),
        "seed": numpy_seed(),
        "end_date": Check(_is_date, "must be an ISO date like 2023-11-01 (no time zone), or 'now'"),
    }


def _check(cfg: DictConfig) -> None:
    # end_date passed its own check first, so it parses.
    end = parse_end_date(cfg.end_date)
    if cfg.n_rows > max_rows(end):
        raise ConfigError(
            "dataset.n_rows",
            cfg.n_rows,
            f"must be <= {max_rows(end)}: more days would reach before year 1 "
            f"from dataset.end_date={cfg.end_date}",
        )


def _normalize(cfg: DictConfig) -> None:
    """Write end_date one way: ``now`` as the moment it stands for, any day as YYYY-MM-DD.

    Params, fingerprint and data then all name the same, replayable end date, and equal
    dates reuse each other's runs.
    """
    end = parse_end_date(cfg.end_date)
    has_time = end.time() != datetime.min.time()
    cfg.end_date = end.isoformat(timespec="seconds") if has_time else end.date().isoformat()


def _load(cfg: DictConfig) -> Data:
    frame = apple_sales(
        n_rows=cfg.n_rows, base_demand=cfg.base_demand, seed=cfg.seed, end_date=cfg.end_date
    )
    return describe(
        frame,
        target=TARGET,
        drop=NOT_FEATURES,
        task="regression",
        name="apple_sales",
        source=None,
        digest=frame_digest(frame),
        where="dataset=apple_sales",
        order="date",
    )


SOURCE = Source(
    name="apple_sales",
    schema=AppleSalesConfig,
    load=_load,
    task=lambda cfg: "regression",
    check=_check,
    normalize=_normalize,
)
