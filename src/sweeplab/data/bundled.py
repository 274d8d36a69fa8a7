"""`dataset=sklearn`: scikit-learn's bundled datasets, which ship with it (no download)."""

from dataclasses import dataclass
from typing import ClassVar

from omegaconf import DictConfig

from sweeplab.data.base import Data, DatasetConfig, Source, describe, frame_digest
from sweeplab.util.checks import Check, one_of

# Each bundled dataset's loader in sklearn.datasets and its task.
BUNDLED = {
    "diabetes": ("load_diabetes", "regression"),
    "iris": ("load_iris", "classification"),
    "wine": ("load_wine", "classification"),
    "breast_cancer": ("load_breast_cancer", "classification"),
    "digits": ("load_digits", "classification"),
}


@dataclass
class SklearnConfig(DatasetConfig):
    """One of scikit-learn's bundled datasets, by name."""

    # diabetes (regression) | iris | wine | breast_cancer | digits (classification)
    name: str = "iris"

    CHECKS: ClassVar[dict[str, Check]] = {**DatasetConfig.CHECKS, "name": one_of(BUNDLED)}


def _load(cfg: DictConfig) -> Data:
    import sklearn.datasets

    loader, task = BUNDLED[cfg.name]
    frame = getattr(sklearn.datasets, loader)(as_frame=True).frame
    return describe(
        frame,
        target="target",
        drop=(),
        task=task,
        name=str(cfg.name),
        source=None,
        digest=frame_digest(frame),
        where=f"dataset.name={cfg.name}",
    )


SOURCE = Source(
    name="sklearn",
    schema=SklearnConfig,
    load=_load,
    task=lambda cfg: BUNDLED[cfg.name][1],
    label=lambda cfg: str(cfg.name),
)
