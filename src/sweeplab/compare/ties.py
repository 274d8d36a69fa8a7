"""Whether two runs scored on the same folds differ beyond noise (pure: numbers in, p out).

Fold scores are not independent samples: every two folds' training rows overlap, so a plain
paired t-test on them calls differences real far too often. Nadeau and Bengio's corrected
resampled t-test (Machine Learning 52, 2003) widens the variance by the share of rows each
fold validates on relative to those it trains on; it is the test scikit-learn's own example
"Statistical comparison of models using grid search" uses for GridSearchCV's fold scores.
"""

import math
from collections.abc import Mapping, Sequence

# The default threshold: a paired difference with p below it is called real (sweep.alpha).
ALPHA = 0.05


def validation_ratio(kind: str, k: int) -> float:
    """Rows validated on over rows trained on, averaged over the folds of a ``kind`` split.

    k-fold and group folds: 1/(k-1). Time-ordered folds (TimeSeriesSplit) validate on one
    block of k+1 after training on i of them, i = 1..k.
    """
    if kind == "time":
        return sum(1 / i for i in range(1, k + 1)) / k
    return 1 / (k - 1)


def ratio_of(params: Mapping[str, str]) -> float | None:
    """validation_ratio of a run's folds, from its logged params ``split.kind`` and ``split.k``;
    None for a run without folds."""
    k = params.get("split.k", "")
    return validation_ratio(params.get("split.kind", ""), int(k)) if k.isdigit() else None


def p_value(a: Sequence[float], b: Sequence[float], ratio: float) -> float:
    """Two-sided p-value that fold scores ``a`` and ``b`` (same folds, same order) differ.

    The corrected resampled t-test with ``ratio`` = validation_ratio of the folds. Equal
    scores on every fold give 1; a difference that is the same on every fold gives 0.
    """
    from scipy import stats

    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"need two equal lists of >= 2 fold scores, got {len(a)} and {len(b)}")
    d = [x - y for x, y in zip(a, b, strict=True)]
    k = len(d)
    mean = sum(d) / k
    variance = sum((x - mean) ** 2 for x in d) / (k - 1)
    if variance == 0:
        return 1.0 if mean == 0 else 0.0
    t = mean / math.sqrt((1 / k + ratio) * variance)
    return float(2 * stats.t.sf(abs(t), k - 1))
