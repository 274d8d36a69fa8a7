"""Compose a sweep's jobs as Hydra does, without reading every config file again for each.

Hydra composes each job from scratch: the defaults list, every YAML file, the schemas, then
the overrides (~0.1 s a job on 2 cores). The jobs of a sweep mostly differ in plain values
(``model.alpha=3``), which change none of that: only the overrides applied last. So a job is
its *template* (the sweep's config composed once with the job's config-group overrides)
copied, with its plain overrides applied the way Hydra applies them. Anything else
(``+key``, ``~key``, ``key@pkg``, ``hydra.searchpath``) is composed by Hydra itself.
tests/test_compose.py checks the result equals Hydra's own, node for node.
"""

import copy
from typing import Any

from hydra.core.config_loader import ConfigLoader
from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.object_type import ObjectType
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from hydra.plugins.config_source import ConfigSource
from hydra.types import HydraContext, RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from sweeplab.util import hydra_internals
from sweeplab.util.recent import Recent

# Templates kept per process: one per distinct set of config-group choices (model=a,b,c: 3).
# A joblib worker unpickles a new composer for every job, so the cache is the process's.
_templates: Recent[DictConfig] = Recent(16)


def _groups(master: DictConfig) -> set[str]:
    return {str(group) for group in master.hydra.runtime.choices}


def _plain(override: Override, groups: set[str]) -> bool:
    """Whether Hydra applies ``override`` only after composing, as a value (``key=value``)."""
    key = override.key_or_group
    return (
        override.type == OverrideType.CHANGE
        and override.package is None
        and "/" not in key
        and key not in groups
        and key != "hydra.searchpath"
        and not override.is_sweep_override()
    )


def _unresolved(overrides: Any) -> list[str]:
    """The override strings as given: ``hydra.sweep.subdir=${hydra.job.num}`` stays as it is
    (iterating the list would resolve it, and the sweep's config has no job number)."""
    return [str(o) for o in OmegaConf.to_container(overrides, resolve=False)]  # type: ignore[union-attr]


class JobComposer(ConfigLoader):
    """Hydra's config loader, with ``load_sweep_config`` served from per-sweep templates."""

    def __init__(self, loader: ConfigLoader) -> None:
        self.loader = loader

    def load_sweep_config(
        self, master_config: DictConfig, sweep_overrides: list[str]
    ) -> DictConfig:
        """The job's config: what Hydra's own ``load_sweep_config`` would return."""
        parsed = OverridesParser.create().parse_overrides(list(sweep_overrides))
        if any(o.type != OverrideType.CHANGE for o in parsed):
            return self.loader.load_sweep_config(master_config, list(sweep_overrides))
        groups = _groups(master_config)
        plain = [o for o in parsed if _plain(o, groups)]
        structural = [str(o.input_line) for o in parsed if o not in plain]
        cfg = copy.deepcopy(self._template(master_config, structural))
        # What Hydra's _load_configuration_impl does after composing, for these overrides: apply
        # them in order (the structural ones are config groups, applied by composing), then list
        # each under hydra.overrides and name the job's folder after them.
        hydra_internals.apply_overrides(plain, cfg)
        hydra_overrides = _unresolved(master_config.hydra.overrides.hydra)
        task = []
        for override in parsed:
            if override.is_hydra_override():
                hydra_overrides.append(str(override.input_line))
            else:
                task.append(override)
        naming = cfg.hydra.job.config.override_dirname
        with open_dict(cfg.hydra):
            cfg.hydra.overrides.hydra = hydra_overrides
            cfg.hydra.overrides.task = [o.input_line for o in task]
            cfg.hydra.job.override_dirname = hydra_internals.overrides_dirname(
                task, list(naming.exclude_keys), item=naming.item_sep, kv=naming.kv_sep
            )
        OmegaConf.copy_cache(from_config=master_config, to_config=cfg)
        return cfg

    def _template(self, master: DictConfig, structural: list[str]) -> DictConfig:
        # What decides the template: where configs are found, the main one and its overrides.
        key = (
            OmegaConf.to_yaml(master.hydra.runtime.config_sources),
            master.hydra.runtime.cwd,
            master.hydra.job.config_name,
            tuple(_unresolved(master.hydra.overrides.hydra)),
            tuple(_unresolved(master.hydra.overrides.task)),
            str(master.hydra.sweep.dir),
            tuple(structural),
        )
        return _templates.get(key, lambda: self.loader.load_sweep_config(master, structural))

    # The rest is Hydra's own loader's.
    def load_configuration(
        self,
        config_name: str | None,
        overrides: list[str],
        run_mode: RunMode,
        from_shell: bool = True,
        validate_sweep_overrides: bool = True,
    ) -> DictConfig:
        """Hydra's own composition."""
        return self.loader.load_configuration(
            config_name, overrides, run_mode, from_shell, validate_sweep_overrides
        )

    def get_search_path(self) -> ConfigSearchPath:
        """Hydra's own search path."""
        return self.loader.get_search_path()

    def get_sources(self) -> list[ConfigSource]:
        """Hydra's own config sources."""
        return self.loader.get_sources()

    def list_groups(self, parent_name: str) -> list[str]:
        """Hydra's own config groups."""
        return self.loader.list_groups(parent_name)

    def get_group_options(
        self,
        group_name: str,
        results_filter: ObjectType | None = ObjectType.CONFIG,
        config_name: str | None = None,
        overrides: list[str] | None = None,
    ) -> list[str]:
        """Hydra's own options of a group."""
        return self.loader.get_group_options(group_name, results_filter, config_name, overrides)

    def compute_defaults_list(
        self, config_name: str | None, overrides: list[str], run_mode: RunMode
    ) -> Any:
        """Hydra's own defaults list."""
        return self.loader.compute_defaults_list(config_name, overrides, run_mode)


def fast(context: HydraContext) -> HydraContext:
    """``context`` with a JobComposer as its config loader, for a launcher to compose jobs."""
    loader = context.config_loader
    if not isinstance(loader, JobComposer):
        loader = JobComposer(loader)
    return HydraContext(config_loader=loader, callbacks=context.callbacks)
