"""Compose the command line's config before Hydra does, so bad input is one clear line."""

import dataclasses
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from sweeplab.config import ConfigError
from sweeplab.errors import UserError

# Hydra's flags that print something other than the config: nothing to check for them.
_NOT_RUNNING = ("help", "hydra_help", "version", "info", "shell_completion")
_OVERRIDE = re.compile(r"override (\S+?)=(.*)$")
_CONFIG_FILE = re.compile(r"In '([^']+)'")
# Launcher configs that build on a plugin's own config, and the extra that installs it.
# (hydra/launcher=ray composes without its plugin; sweeplab.cluster names the extra.)
_PLUGIN_EXTRAS = {"hydra/launcher/submitit_": "slurm"}


def describe(error: Exception, overrides: Sequence[str] = ()) -> str:
    """A Hydra or OmegaConf composition error as one line naming the key, value and rule.

    ``overrides`` (the command line's) supply the value when Hydra's message omits it.
    """
    if isinstance(error, OverrideParseException):
        return f"cannot parse the override {error.override!r}: {_first_line(error.message)}"
    if isinstance(error, MissingConfigException) and error.options:
        group, _, option = str(error.missing_cfg_file).rpartition("/")
        return str(ConfigError(group, option, f"must be one of {sorted(error.options)}"))
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
    if isinstance(cause, ConfigKeyError | AttributeError) and "not in" in str(cause):
        rule = _unknown_key(cause)
    elif isinstance(cause, ValidationError):
        rule = _first_line(getattr(cause, "msg", str(cause)))
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
    from hydra import compose, initialize_config_module
    from hydra._internal.utils import get_args_parser  # the parser @hydra.main itself uses
    from hydra.core.override_parser.overrides_parser import OverridesParser

    args = get_args_parser().parse_args(list(argv))
    if args.multirun and (args.cfg or args.info):
        # Hydra says so with a traceback.
        raise UserError(
            "-m/--multirun cannot be combined with --cfg or --info: drop -m to print the "
            "config (--cfg hydra shows the launcher's settings)"
        )
    if any(getattr(args, flag, None) for flag in _NOT_RUNNING) or args.config_path:
        return
    if args.config_dir:
        _check_config_dir(args.config_dir)
    overrides = list(args.overrides)
    if args.multirun:
        # Each job's values are checked by the sweep (sweeplab.sweep.check_jobs_compose).
        try:
            parsed = OverridesParser.create().parse_overrides(overrides)
        except HydraException as e:
            raise UserError(describe(e, overrides)) from None
        overrides = [o.input_line for o in parsed if not o.is_sweep_override() and o.input_line]
    if args.config_dir:
        # What --config-dir does: one more place to find config files.
        overrides.append(f"hydra.searchpath=[file://{Path(args.config_dir).resolve()}]")
    try:
        with initialize_config_module(config_module="sweeplab.conf", version_base="1.3"):
            compose(config_name=args.config_name or "config", overrides=overrides)
    except (HydraException, OmegaConfBaseException) as e:
        message = describe(e, overrides)
        for config, extra in _PLUGIN_EXTRAS.items():
            if f"Could not load '{config}" in str(e):
                message += f" (its Hydra plugin is not installed: pip install 'sweeplab[{extra}]')"
        raise UserError(message) from None
