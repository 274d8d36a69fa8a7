"""The one allow-list for every ``_target_`` a config names, checked before anything is imported.

Importing a module runs its code, and Hydra calls whatever ``hydra.callbacks`` names, so a
config file must not be able to pick arbitrary code. A composed config passes only if each
``_target_`` in it (and each class, factory or ``ext://`` object in Hydra's logging configs, and
each ``pkg://`` search path) is on this list. Users widen it from the environment only
(``SWEEPLAB_ALLOW_TARGETS=mypkg.models,otherpkg``), never from a config file.
"""

import importlib
import importlib.util
from collections.abc import Iterator
from typing import Any

from omegaconf import DictConfig, ListConfig

from sweeplab.util import env
from sweeplab.util.errors import UserError, install_extra

# Model targets: estimator classes from these libraries (checked to be estimators once
# imported; importing these packages' modules runs only their own code).
ESTIMATOR_MODULES = ("sklearn", "lightgbm", "xgboost", "catboost")

# Everything else Hydra instantiates: exactly sweeplab's and the official launcher and
# sweeper plugins (no callback by default). Named one by one: a prefix such as `sweeplab`
# would also let a callback call `sweeplab.cli.tools.main` with arguments of the config's
# choosing.
PLUGIN_TARGETS = (
    "hydra._internal.core_plugins.basic_launcher.BasicLauncher",
    "hydra_plugins.sweeplab_basic_launcher.basic_launcher.BasicLauncher",
    "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
    "hydra_plugins.sweeplab_grid_sweeper.grid_sweeper.GridSweeper",
    "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher",
    "hydra_plugins.sweeplab_joblib_launcher.joblib_launcher.JoblibLauncher",
    "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher",
    "hydra_plugins.sweeplab_ray_launcher.ray_launcher.RayLauncher",
    "hydra_plugins.hydra_ray_launcher.ray_aws_launcher.RayAWSLauncher",
    "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher",
    "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",
    "hydra_plugins.hydra_rq_launcher.rq_launcher.RQLauncher",
    "hydra_plugins.sweeplab_optuna_sweeper.optuna_sweeper.OptunaSweeper",
    "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper",
    "hydra_plugins.hydra_ax_sweeper.ax_sweeper.AxSweeper",
    "hydra_plugins.hydra_nevergrad_sweeper.nevergrad_sweeper.NevergradSweeper",
)
# Objects the Optuna sweepers build from their config (hydra.sweeper.sampler, .pruner).
PLUGIN_MODULES = ("optuna.samplers", "optuna.pruners")
# Hydra's logging configs (logging.config.dictConfig) import `class` and `()` and resolve
# `ext://` references; its own defaults use only these.
LOGGING_MODULES = ("logging", "hydra.core")
EXT_OBJECTS = ("sys.stdout", "sys.stderr")
# Config packages Hydra may import for `pkg://` search paths.
CONFIG_PACKAGES = ("sweeplab.conf", "hydra.conf", "hydra_plugins")
# Types skops may load besides estimator modules' own: plain containers some models hold, and
# the partial a HistGradientBoosting with categorical features keeps (skops audits the function
# it wraps as an object of its own: scikit-learn's check_array).
SKOPS_EXTRA_TYPES = ("collections.OrderedDict", "collections.defaultdict", "functools.partial")

_HOW = (
    "if you trust that code, allow it from the environment: {var}={prefix} "
    "(module prefixes, comma-separated)"
)


class TargetRefused(UserError):
    """A config names code outside the allow-list; the message says where and how to allow it."""

    def __init__(self, key: str, target: str, what: str, *, allowable: bool = True) -> None:
        self.key, self.target = key, target
        prefix = target.removeprefix("ext://").removeprefix("pkg://").rsplit(".", 1)[0]
        how = "; " + _HOW.format(var=env.ALLOW_TARGETS.name, prefix=prefix or target)
        super().__init__(f"{key}={target!r} is not allowed: {what}{how if allowable else ''}")


def user_prefixes() -> tuple[str, ...]:
    """The module prefixes the user allowed through SWEEPLAB_ALLOW_TARGETS."""
    return tuple(p.strip() for p in env.ALLOW_TARGETS.get().split(",") if p.strip())


def under(name: str, prefixes: tuple[str, ...]) -> bool:
    """Whether dotted ``name`` is one of ``prefixes`` or inside one (``a.b`` is under ``a``)."""
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def is_estimator_target(target: str) -> bool:
    """Whether a model may name ``target`` (it must still turn out to be an estimator class)."""
    return under(target, ESTIMATOR_MODULES + user_prefixes())


def is_plugin_target(target: str) -> bool:
    """Whether Hydra may instantiate ``target`` (callbacks, launchers, sweepers)."""
    return target in PLUGIN_TARGETS or under(target, PLUGIN_MODULES + user_prefixes())


def is_trusted_type(name: str) -> bool:
    """Whether skops may load objects of type ``name`` when loading a logged model back."""
    return name in SKOPS_EXTRA_TYPES or under(name, ESTIMATOR_MODULES + user_prefixes())


def model_targets(value: Any) -> Iterator[str]:
    """The class names a model's ``_target_`` gives: one string, or one per task."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict | DictConfig):
        for target in value.values():
            yield str(target)
    else:
        yield str(value)


def _walk(node: Any, path: str) -> Iterator[tuple[str, str, Any]]:
    """Every (key path, key, value) under ``node``; unresolvable values come back as None."""
    if isinstance(node, DictConfig):
        for key in map(str, node):
            try:
                value = node[key]
            except Exception:  # an interpolation only Hydra's job context resolves
                value = None
            child = f"{path}.{key}" if path else key
            yield child, str(key), value
            yield from _walk(value, child)
    elif isinstance(node, ListConfig):
        for i in range(len(node)):
            try:
                value = node[i]
            except Exception:
                value = None
            yield from _walk(value, f"{path}[{i}]")
            if isinstance(value, str):
                yield f"{path}[{i}]", "", value


def check_config(cfg: DictConfig) -> None:
    """Raise TargetRefused for the first code reference in ``cfg`` that is not allowed."""
    for path, key, value in _walk(cfg, ""):
        in_logging = path.startswith(("hydra.job_logging", "hydra.hydra_logging"))
        if key == "_target_":
            if path.startswith("model."):
                for target in model_targets(value):
                    if not is_estimator_target(target):
                        raise TargetRefused(
                            path, target, "a model must be an estimator class from "
                            f"{', '.join(ESTIMATOR_MODULES)}",
                        )  # fmt: skip
            elif value is None or not is_plugin_target(str(value)):
                what = (
                    "a sampler must be a class of optuna.samplers"
                    if path.startswith("hydra.sweeper.sampler")
                    else "a pruner must be a class of optuna.pruners"
                    if path.startswith("hydra.sweeper.pruner")
                    else "Hydra may instantiate only sweeplab's and the official "
                    "launcher and sweeper plugins"
                )
                raise TargetRefused(path, str(value), what)
        elif (
            in_logging
            and key in ("class", "()")
            and (value is None or not under(str(value), LOGGING_MODULES + user_prefixes()))
        ):
            raise TargetRefused(path, str(value), "logging configs may use logging's classes")
        if not isinstance(value, str):
            continue
        if in_logging and value.startswith("ext://") and value[6:] not in EXT_OBJECTS:
            raise TargetRefused(path, value, f"logging configs may refer to {EXT_OBJECTS}")
        if (
            path.startswith("hydra.searchpath")
            and value.startswith("pkg://")
            and not under(value[6:], CONFIG_PACKAGES + user_prefixes())
        ):
            raise TargetRefused(
                path,
                value,
                f"config search paths may import only config packages {CONFIG_PACKAGES}",
            )


def load_estimator_class(target: str, key: str) -> type:
    """Import the estimator class ``target`` once it is allowed; refuse anything else."""
    if not is_estimator_target(target):
        raise TargetRefused(
            key, target, f"a model must be an estimator class from {', '.join(ESTIMATOR_MODULES)}"
        )
    module_name, _, attribute = target.rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except ImportError as e:
        top = module_name.split(".")[0]
        if importlib.util.find_spec(top) is not None:
            raise UserError(f"{key}={target!r} cannot be imported: {e}") from None
        extra = {"lightgbm": "lightgbm", "xgboost": "xgboost"}.get(top)
        hint = (
            f": {install_extra(extra)}"
            if extra
            else " or not importable: install it (pip install -e DIR) or put its folder on "
            "PYTHONPATH"
        )
        raise UserError(
            f"{key}={target!r} cannot be imported: {top} is not installed{hint}"
        ) from None
    except AttributeError:
        raise UserError(
            f"{key}={target!r} is not allowed: {module_name} has no {attribute}"
        ) from None
    if not isinstance(found, type) or not all(
        callable(getattr(found, m, None)) for m in ("fit", "predict", "get_params")
    ):
        raise TargetRefused(
            key, target, "a model must be a scikit-learn-style estimator class "
            "(with fit, predict and get_params)", allowable=False,
        )  # fmt: skip
    return found
