"""Model configs to scikit-learn estimators, through a fixed allow-list."""

from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf
from sklearn.base import RegressorMixin
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import Ridge

from sweeplab.config import (
    GradientBoostingConfig,
    ModelConfig,
    RandomForestConfig,
    RidgeConfig,
    hyperparameters,
)


@dataclass(frozen=True)
class Estimator:
    """An allowed estimator class and the types skops must trust to load it back."""

    cls: type[RegressorMixin]
    skops_trusted_types: tuple[str, ...] = ()


# Only these are ever built: a config picks a schema, never a class path.
ESTIMATORS: dict[type[ModelConfig], Estimator] = {
    RandomForestConfig: Estimator(RandomForestRegressor, ("sklearn.tree._tree.Tree",)),
    GradientBoostingConfig: Estimator(GradientBoostingRegressor, ("sklearn.tree._tree.Tree",)),
    RidgeConfig: Estimator(Ridge),
}


def estimator_for(model: DictConfig) -> Estimator:
    """The allow-listed estimator a model config's schema stands for."""
    return ESTIMATORS[OmegaConf.get_type(model)]  # type: ignore[index]


def build(model: DictConfig) -> RegressorMixin:
    """An unfitted estimator with the config's hyperparameters."""
    return estimator_for(model).cls(**hyperparameters(model))
