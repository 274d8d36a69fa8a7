"""Compose the command line's config before Hydra does, so bad input is one clear line."""

import contextlib
import dataclasses
import importlib.util
import os
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from omegaconf import MISSING
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from sweeplab.config.schema import ConfigError
from sweeplab.util import allow, hydra_internals
from sweeplab.util.errors import UserError, install_extra

if TYPE_CHECKING:
    from hydra.core.override_parser.types import Override

# Hydra's flags that print something other than the config: nothing to check for them.
_NOT_RUNNING = ("help", "hydra_help", "version", "info", "shell_completion")
_OVERRIDE = re.compile(r"override (\S+?)=(.*)$")
_CONFIG_FILE = re.compile(r"In '([^']+)'")
# describe()'s line for a model key Hydra refused, which explain_model_key makes precise.
_UNKNOWN_MODEL_KEY = re.compile(
    r"(?P<key>model\.[\w.]+)=(?P<value>.*) is not allowed: unknown key$"
)
# Launcher configs that build on a plugin's own config, and the extra that installs it.
# (hydra/launcher=ray composes without its plugin; sweeplab.sweep.cluster names the extra.)
_PLUGIN_EXTRAS = {"hydra/launcher/submitit_": "slurm"}


# Hydra's refusal of `+key=value` for a key the config has.
_ALREADY_THERE = re.compile(r"Could not append to config\. An item is already at '([^']+)'")
_ENUM_CHOICES = re.compile(r"Invalid value .*, expected one of \[(.*)\]$")


def describe(error: Exception, overrides: Sequence[str] = ()) -> str:
    """A Hydra or OmegaConf composition error as one line naming the key, value and rule.

    ``overrides`` (the command line's) supply the value when Hydra's message omits it.
    """
    if isinstance(error, OverrideParseException):
        return f"cannot parse the override {error.override!r}: {_first_line(error.message)}"
    if isinstance(error, MissingConfigException) and error.options:
        group, _, option = str(error.missing_cfg_file).rpartition("/")
        return str(ConfigError(group, option, f"must be one of {sorted(error.options)}"))
    if taken := _ALREADY_THERE.search(str(error)):
        key = taken.group(1)
        return f"{key} is already in the config: drop the '+' of +{key}=... to set it"
    causes = [
        c for c in (error.__cause__, error.__context__) if isinstance(c, OmegaConfBaseException)
    ]
    cause = causes[0] if causes else error
    first = _first_line(str(error)) or type(error).__name__
    override = _OVERRIDE.search(first)
    key = getattr(cause, "full_key", None) or (override.group(1).lstrip("+~") if override else None)
    value = override.group(2) if override else _value_of(key, overrides)
    if key is None:
        return first
    if override and value is not None and key.startswith(f"{override.group(1).lstrip('+~')}."):
        # A mapping given whole ({city:targt}): the bad value is the one under ``key``.
        value = _value_under(value, key.removeprefix(f"{override.group(1).lstrip('+~')}."))
    if isinstance(cause, ConfigKeyError | AttributeError) and "not in" in str(cause):
        rule = _unknown_key(cause)
        if (
            rule == "unknown key"
            and not key.startswith("model.")
            and (given := _adding(key, overrides))
        ):
            # A mapping (dataset.encode) takes new keys, but Hydra only adds them with a '+'.
            return f"{key} is not a key yet: add it with '+{given}'"
    elif isinstance(cause, ValidationError) and "is not a ListConfig" in str(cause):
        rule = f"must be a list: {key}=[a,b]"
    elif isinstance(cause, ValidationError):
        rule = _first_line(getattr(cause, "msg", str(cause)))
        # OmegaConf's enum check: "Invalid value 'x', expected one of [a, b]".
        if choices := _ENUM_CHOICES.match(rule):
            rule = f"must be one of [{choices.group(1)}]"
    else:
        return first
    if value is None and (source := _CONFIG_FILE.match(first)):
        # The bad key comes from a config file, not from the command line.
        return f"{key} in config file '{source.group(1)}' is not allowed: {rule}"
    return str(ConfigError(key, value, rule))


def _value_of(key: str | None, overrides: Sequence[str]) -> str | None:
    for line in overrides:
        name, sep, value = line.partition("=")
        if sep and name.lstrip("+~") == key:
            return value
    return None


def _value_under(given: str, path: str) -> str:
    """The value at ``path`` (a.b) of an override's mapping value, else the value as given."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        value: Any = OverridesParser.create().parse_override(f"k={given}").value()
        for part in path.split("."):
            value = value[part]
    except Exception:
        return given
    return str(value)


def _adding(key: str, overrides: Sequence[str]) -> str | None:
    """The override without a leading '+' that sets ``key`` or the mapping holding it."""
    for line in overrides:
        name, sep, _ = line.partition("=")
        # A key (a.b), not a group's option (dataset=table).
        given = sep and "." in name and not line.startswith(("+", "~"))
        if given and (key == name or key.startswith(f"{name}.")):
            return line
    return None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def _unknown_key(cause: Any) -> str:
    schema = getattr(cause, "object_type", None)
    if schema is not None and dataclasses.is_dataclass(schema):
        known = [f.name for f in dataclasses.fields(schema)]
        return f"unknown key: known keys are {known}"
    return "unknown key"


def _check_config_dir(config_dir: str) -> None:
    path = Path(config_dir)
    if not path.is_dir() or not os.access(path, os.R_OK | os.X_OK):
        raise UserError(
            f"--config-dir {config_dir!r} is not a readable directory: give the folder that "
            "holds your experiment/, model/, ... config files"
        )


def check(argv: Sequence[str]) -> None:
    """Raise UserError (one line) if ``argv``'s overrides would not compose; else return."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    args = hydra_internals.args_parser().parse_args(list(argv))
    if args.multirun and (args.cfg or args.info):
        # Hydra says so with a traceback.
        raise UserError(
            "-m/--multirun cannot be combined with --cfg or --info: drop -m to print the "
            "config (--cfg hydra shows the launcher's settings)"
        )
    if args.config_path:
        # A primary config from elsewhere would skip the checks below, the allow-list's too.
        raise UserError(
            "--config-path is not supported: pass your config folder with --config-dir DIR "
            "(and --config-name NAME to start from a primary config of yours in it)"
        )
    if any(getattr(args, flag, None) for flag in _NOT_RUNNING):
        return
    if args.config_dir:
        _check_config_dir(args.config_dir)
    overrides = list(args.overrides)
    if args.multirun:
        # Each job's values are checked by the sweep (sweeplab.sweep.parent.check_jobs_compose).
        try:
            parsed = OverridesParser.create().parse_overrides(overrides)
        except HydraException as e:
            raise UserError(describe(e, overrides)) from None
        for override in parsed:
            if override.is_sweep_override() and override.key_or_group.endswith("_target_"):
                _check_swept_targets(override)
        overrides = [o.input_line for o in parsed if not o.is_sweep_override() and o.input_line]
    try:
        composed = _compose(args.config_dir, args.config_name, overrides, with_hydra=True)
    except COMPOSE_ERRORS as e:
        raise UserError(compose_error(e, overrides, args.config_dir, args.config_name)) from None
    # Before Hydra runs: it instantiates hydra.callbacks (and imports launchers and sweepers)
    # right after composing.
    allow.check_config(composed)
    if args.config_dir:
        swept = [o.partition("=")[0].lstrip("+~") for o in args.overrides]
        _check_files_set_their_keys(composed, Path(args.config_dir), swept)


def _check_files_set_their_keys(cfg: Any, config_dir: Path, swept: Sequence[str]) -> None:
    """A required key a file of the user's leaves unset is one line naming that file.

    Without it the schema's check says only that ``experiment.name`` is not set, not where.
    """
    from omegaconf import OmegaConf

    for group, choice in cfg.hydra.runtime.choices.items():
        file = config_dir / str(group) / f"{choice}.yaml"
        node = cfg.get(group) if "/" not in str(group) else None
        if choice is None or node is None or not file.is_file() or not OmegaConf.is_dict(node):
            continue
        for key in map(str, node):
            if OmegaConf.is_missing(node, key) and f"{group}.{key}" not in swept:
                raise ConfigError(
                    f"{group}.{key}", MISSING, f"config file '{file}' has no "
                    f"`{key}:` (add it there, or {group}.{key}=... on the command line)",
                )  # fmt: skip


# Composing errors in the options Hydra's own Optuna plugin also names.
_HYDRAS_OPTUNA_PLUGIN = re.compile(r"'hydra/sweeper/(optuna|sampler/)")

# What composing a config raises for bad input: Hydra's and OmegaConf's errors, and a
# config file's YAML syntax error.
COMPOSE_ERRORS = (HydraException, OmegaConfBaseException, yaml.YAMLError)


def compose_error(
    error: Exception, overrides: list[str], config_dir: str | None, config_name: str | None
) -> str:
    """One line for an error in COMPOSE_ERRORS, naming the key, the file or the plugin."""
    if isinstance(error, yaml.YAMLError):
        return _yaml_error(error)
    if _HYDRAS_OPTUNA_PLUGIN.search(str(error)) and (
        importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is not None
    ):
        # Hydra 1.3 checks a config file against a ConfigStore entry of the same name, and
        # Hydra's plugin stores its own under hydra/sweeper/optuna and its samplers' names.
        return (
            "hydra/sweeper=optuna is sweeplab's Optuna sweeper, but Hydra's hydra-optuna-sweeper "
            "is installed too and Hydra 1.3 checks sweeplab's options against its configs: "
            "pip uninstall hydra-optuna-sweeper (it needs optuna<3; sweeplab's needs >=4.9)"
        )
    message = describe(error, overrides)
    for config, extra in _PLUGIN_EXTRAS.items():
        if f"Could not load '{config}" in str(error):
            message += f" (its Hydra plugin is not installed: {install_extra(extra)})"
    return explain_model_key(
        message, overrides, lambda others: _compose(config_dir, config_name, others)
    )


@contextlib.contextmanager
def hydra_app(config_dir: str | None) -> "Iterator[hydra_internals.Hydra]":
    """Hydra as ``@hydra.main`` sets it up: sweeplab's configs, then ``--config-dir``'s.

    Hydra's compose API cannot look for the primary config (``--config-name``) in a
    ``hydra.searchpath`` entry, so this builds the search path the way Hydra's own
    command line does.
    """
    from hydra.core.config_search_path import SearchPathQuery
    from hydra.core.global_hydra import GlobalHydra

    search_path = hydra_internals.search_path("pkg://sweeplab.conf")
    if config_dir:
        # Where Hydra's --config-dir puts it: after sweeplab's, before the schemas.
        search_path.prepend(
            provider="command-line",
            path=f"file://{Path(config_dir).resolve()}",
            anchor=SearchPathQuery(provider="schema"),
        )
    GlobalHydra.instance().clear()
    try:
        yield hydra_internals.main_hydra(search_path, task_name="sweeplab")
    finally:
        GlobalHydra.instance().clear()


def _compose(
    config_dir: str | None,
    config_name: str | None,
    overrides: list[str],
    *,
    with_hydra: bool = False,
) -> Any:
    """The config ``@hydra.main`` would compose (``hydra`` node only ``with_hydra``)."""
    from hydra.types import RunMode
    from omegaconf import OmegaConf, open_dict

    with hydra_app(config_dir) as hydra:
        cfg = hydra.compose_config(config_name or "config", overrides, run_mode=RunMode.RUN)
    if not with_hydra:
        with open_dict(cfg):
            del cfg["hydra"]
    OmegaConf.set_readonly(cfg, False)
    return cfg


def _yaml_error(error: "yaml.YAMLError") -> str:
    """A YAML syntax error in a config file as one line naming the file and the line."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or _first_line(str(error))
    if mark is None:
        return f"a config file is not valid YAML: {problem}"
    return (
        f"config file '{mark.name}' line {mark.line + 1}, column {mark.column + 1} "
        f"is not valid YAML: {problem}"
    )


def explain_model_key(
    message: str, overrides: list[str], compose: "Callable[[list[str]], Any]"
) -> str:
    """For a model key Hydra refused, say if it is the estimator's (add it with +) or a typo.

    ``compose`` builds the config without that key's overrides, to find the estimator;
    any other ``message`` comes back as it is.
    """
    from sweeplab.model import estimators

    found = _UNKNOWN_MODEL_KEY.match(message)
    if found is None:
        return message
    key, value = found["key"], found["value"]
    others = [o for o in overrides if o.partition("=")[0].lstrip("+~") != key]
    try:
        target, names = estimators.parameters_of(compose(others).model)
    except Exception:  # the plain message stands
        return message
    name = key.removeprefix("model.")
    if name in names:
        return (
            f"{key}={value} is not allowed: the model's config does not set {name}; "
            f"add it with +{key}={value.strip(chr(39))}"
        )
    return (
        f"{key}={value} is not allowed: unknown hyperparameter of {target}: "
        f"its parameters are {names}"
    )


def _check_swept_targets(override: "Override") -> None:
    """Refuse a swept ``..._target_`` value that the allow-list would refuse in its job."""
    from omegaconf import OmegaConf

    key = override.key_or_group
    for value in override.sweep_string_iterator():
        node = OmegaConf.create()
        OmegaConf.update(node, key, value, force_add=True)
        allow.check_config(node)
