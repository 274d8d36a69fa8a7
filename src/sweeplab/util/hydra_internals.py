"""Every private Hydra and OmegaConf name sweeplab uses, in one place, each with why.

Hydra 1.3 has no public API for these. tests/test_hydra_internals.py checks that each still
has the shape used here, and fingerprints the Hydra functions that sweeplab's plugins follow
step by step (``MIRRORED``), so that a new hydra-core fails there, naming what to review,
instead of somewhere inside a sweep. Two more private imports cannot live here: the plugin
modules subclass Hydra's ``BasicLauncher`` and ``BasicSweeper`` when Hydra's plugin scan
imports them, in every Hydra app, where importing sweeplab is not wanted; the same test
covers them.
"""

import contextlib
from argparse import ArgumentParser
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.deprecation_warning import deprecation_warning
from hydra._internal.hydra import Hydra as Hydra  # the type main_hydra returns
from hydra._internal.utils import create_automatic_config_search_path, get_args_parser
from hydra.core import utils as hydra_utils
from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.override_parser.types import Override
from hydra.core.singleton import Singleton
from omegaconf import DictConfig

# Hydra functions that sweeplab's code follows step by step (the qualified name -> what
# follows it). When one changes, review the follower, then the fingerprint in the test.
MIRRORED = {
    "hydra.core.utils.run_job": "sweeplab.sweep.jobrun.run_job",
    "hydra._internal.core_plugins.basic_launcher.BasicLauncher.launch":
        "hydra_plugins.sweeplab_basic_launcher.basic_launcher.BasicLauncher.launch",
    "hydra._internal.core_plugins.basic_sweeper.BasicSweeper.sweep":
        "hydra_plugins.sweeplab_grid_sweeper.grid_sweeper.GridSweeper.sweep",
    "hydra._internal.config_loader_impl.ConfigLoaderImpl._load_configuration_impl":
        "sweeplab.sweep.compose.JobComposer.load_sweep_config",
    "hydra_plugins.hydra_joblib_launcher._core.launch":
        "hydra_plugins.sweeplab_joblib_launcher._core.launch",
    "hydra_plugins.hydra_joblib_launcher._core.execute_job":
        "hydra_plugins.sweeplab_joblib_launcher._core.execute_job",
}  # fmt: skip


def args_parser() -> ArgumentParser:
    """The command-line parser ``@hydra.main`` itself uses (--help, -m, --config-dir, ...)."""
    return get_args_parser()


def search_path(primary: str) -> ConfigSearchPath:
    """The config search path ``@hydra.main`` builds for the primary config folder ``primary``.

    The compose API cannot look for a primary config (``--config-name``) in a
    ``hydra.searchpath`` entry; ``--config-dir`` needs the search path @hydra.main builds.
    """
    return create_automatic_config_search_path(None, None, primary)


def main_hydra(path: ConfigSearchPath, task_name: str) -> Hydra:
    """Hydra set up as ``@hydra.main`` sets it up, on the search path ``path``."""
    return Hydra.create_main_hydra2(task_name=task_name, config_search_path=path)


def apply_overrides(overrides: list[Override], cfg: DictConfig) -> None:
    """Apply value overrides to a composed config, as Hydra does after composing."""
    ConfigLoaderImpl._apply_overrides_to_config(overrides, cfg)


def overrides_dirname(overrides: list[Override], exclude: list[str], item: str, kv: str) -> str:
    """``hydra.job.override_dirname`` for these overrides, as Hydra names it."""
    return get_overrides_dirname(
        overrides=overrides, exclude_keys=exclude, item_sep=item, kv_sep=kv
    )


def split_sweep(overrides: list[Override], max_batch_size: int | None) -> list[list[list[str]]]:
    """The basic sweeper's batches of jobs for these sweep overrides, in its order."""
    return BasicSweeper.split_arguments(overrides, max_batch_size)


def warn_deprecated(message: str, stacklevel: int = 1) -> None:
    """Hydra's own deprecation warning (its words, its category), for the caller's caller."""
    deprecation_warning(message=message, stacklevel=stacklevel + 1)


def save_config(cfg: DictConfig, filename: str, output_dir: Path) -> None:
    """Write a job's ``.hydra/`` file as ``run_job`` does."""
    hydra_utils._save_config(cfg, filename, output_dir)


def flush_loggers() -> None:
    """Flush every logger's handlers as ``run_job`` does after a job."""
    hydra_utils._flush_loggers()


def known_instance(cls: type) -> Any:
    """The instance of a Hydra singleton class this process has made, if any.

    ``Singleton.get_state`` leaves the plugin registry out; a joblib worker keeps its own.
    """
    return Singleton._instances.get(cls)


@contextlib.contextmanager
def hidden_keys(config: DictConfig, keys: Sequence[str]) -> Iterator[DictConfig]:
    """``config`` seen without ``keys`` for a moment (to copy the rest without copying them).

    OmegaConf has no way to copy a node less some keys short of copying them first.
    """
    content = config.__dict__["_content"]
    config.__dict__["_content"] = {k: v for k, v in content.items() if k not in keys}
    try:
        yield config
    finally:
        config.__dict__["_content"] = content
