"""sweeplab.datasets.apple_sales reproduces the tutorial's generator, without global state."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

import tutorial_lab2
from sweeplab.data.apple_sales import apple_sales


def tutorial_frame(monkeypatch: pytest.MonkeyPatch, now: dt.datetime, **kwargs) -> pd.DataFrame:
    """The tutorial's own generator, run as if the clock read ``now``."""

    class FrozenClock(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls(now.year, now.month, now.day, now.hour, now.minute)

    monkeypatch.setattr(tutorial_lab2, "datetime", FrozenClock)
    return tutorial_lab2.generate_apple_sales_data_with_promo_adjustment(**kwargs)


@pytest.mark.parametrize(
    ("n_rows", "base_demand", "end"),
    [(5000, 1000, dt.datetime(2023, 11, 1)), (730, 1200, dt.datetime(2020, 2, 29, 13, 45))],
)
def test_matches_the_tutorial_generator_value_for_value(monkeypatch, n_rows, base_demand, end):
    expected = tutorial_frame(monkeypatch, end, n_rows=n_rows, base_demand=base_demand)
    actual = apple_sales(n_rows=n_rows, base_demand=base_demand, seed=9999, end_date=end)
    pd.testing.assert_frame_equal(actual, expected)


def test_accepts_the_end_date_as_config_text():
    frame = apple_sales(n_rows=10, end_date="2023-11-01")
    assert frame["date"].iloc[-1] == pd.Timestamp("2023-11-01")
    assert frame["date"].iloc[0] == pd.Timestamp("2023-10-23")


def test_now_ends_today():
    frame = apple_sales(n_rows=3, end_date="now")
    assert frame["date"].iloc[-1].date() == dt.date.today()


def test_leaves_the_global_random_state_alone():
    np.random.seed(123)
    expected = np.random.random_sample(3)
    np.random.seed(123)
    apple_sales(n_rows=50, end_date="2023-11-01")
    assert np.array_equal(np.random.random_sample(3), expected)


def test_seed_changes_the_data_and_is_reproducible():
    a = apple_sales(n_rows=50, seed=1, end_date="2023-11-01")
    assert a.equals(apple_sales(n_rows=50, seed=1, end_date="2023-11-01"))
    assert not a.equals(apple_sales(n_rows=50, seed=2, end_date="2023-11-01"))


def test_rows_reaching_before_year_one_are_a_clear_error():
    end = "0001-01-10"
    assert len(apple_sales(n_rows=10, end_date=end)) == 10
    with pytest.raises(ValueError, match=r"n_rows=11 reaches before year 1 .* at most 10 rows"):
        apple_sales(n_rows=11, end_date=end)


def test_end_date_with_a_time_zone_is_refused():
    with pytest.raises(ValueError, match=r"has a time zone: use a plain date"):
        apple_sales(n_rows=10, end_date="2023-11-01T00:00+05:00")


def test_unparseable_end_date_is_a_clear_error():
    with pytest.raises(ValueError, match=r"end_date='yesterday' is not a date"):
        apple_sales(n_rows=10, end_date="yesterday")
