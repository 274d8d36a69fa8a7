"""`sweeplab --help`: what a user can pick, launchers and sweepers included, and the defaults.

Hydra's own --help lists only the app's groups and prints the config with its
interpolations unresolved (``${oc.env:MLFLOW_TRACKING_URI,...}``); this shows the values a
run would use, with the command line's overrides and ``--config-dir`` applied.
"""

import importlib.util
import textwrap
from collections.abc import Sequence

from omegaconf import DictConfig, OmegaConf

from sweeplab.util import hydra_internals
from sweeplab.util.errors import UserError, install_extra
from sweeplab.util.redact import redact_secrets

_WIDTH = 100
# A space the help's wrapping does not break at (textwrap breaks at ASCII whitespace only).
_KEEP = "\N{NO-BREAK SPACE}"
# Hydra's groups a user picks from, and what each is for.
_HYDRA_GROUPS = {
    "hydra/launcher": "where a sweep's jobs run",
    "hydra/sweeper": "how a sweep picks its jobs' values",
    "hydra/sweeper/sampler": "which Optuna sampler, with hydra/sweeper=optuna",
    "hydra/sweeper/pruner": "stop hopeless Optuna trials between folds",
}
# Options that need an extra, by the module the extra installs (a Hydra plugin, a library).
_NEEDS = {
    "lightgbm": ("lightgbm", "lightgbm"),
    "xgboost": ("xgboost", "xgboost"),
    "ray": ("hydra_plugins.hydra_ray_launcher", "ray"),
    "slurm": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    "submitit_local": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    "submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    "optuna": ("optuna", "optuna"),
}
# Hydra's own launchers and sweepers that a sweeplab user has no use for.
_HIDDEN = {
    "hydra/launcher": {"submitit_local", "submitit_slurm", "ray_aws"},
    "hydra/sweeper": set(),
    "hydra/sweeper/sampler": set(),
    "hydra/sweeper/pruner": set(),
}


def text(argv: Sequence[str]) -> str:
    """The help for the command line ``argv`` (its overrides and --config-dir applied).

    Raises UserError, in the one line a run would print, when that config does not compose.
    """
    from hydra.core.object_type import ObjectType
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.types import RunMode

    from sweeplab.config.preflight import COMPOSE_ERRORS, compose_error, hydra_app

    args = hydra_internals.args_parser().parse_args(list(argv))
    try:
        parsed = OverridesParser.create().parse_overrides(list(args.overrides))
    except COMPOSE_ERRORS as e:
        raise UserError(compose_error(e, list(args.overrides), None, None)) from None
    # A sweep's lists and ranges are not one value: the defaults stand for them here.
    overrides = [str(o.input_line) for o in parsed if not o.is_sweep_override()]
    with hydra_app(args.config_dir) as hydra:
        loader = hydra.config_loader
        try:
            cfg = hydra.compose_config(args.config_name or "config", overrides, RunMode.RUN)
        except COMPOSE_ERRORS as e:
            message = compose_error(e, overrides, args.config_dir, args.config_name)
            raise UserError(message) from None
        app_groups = sorted(g for g in loader.list_groups("") if g != "hydra")
        options = {
            group: loader.get_group_options(group, results_filter=ObjectType.CONFIG)
            for group in [*app_groups, *_HYDRA_GROUPS]
        }
    chosen = dict(cfg.hydra.runtime.choices)
    lines = [str(cfg.hydra.help.header).rstrip(), "", "== Pick one per group (group=option) =="]
    for group in app_groups:
        shown = [_option(o) for o in options[group] if not o.endswith("_schema")]
        lines.append(_listed(group, shown, chosen.get(group)))
    lines += ["", "== Where and how a sweep runs (sweeplab -m hydra/launcher=joblib ...) =="]
    for group, purpose in _HYDRA_GROUPS.items():
        shown = [_option(o) for o in options[group] if o not in _HIDDEN[group]]
        lines.append(_listed(f"{group} ({purpose})", shown, chosen.get(group)))
    if any("(extra:" in line for line in lines):
        lines.append(_wrapped(f"(extra: NAME): not installed; {install_extra('NAME')}"))
    lines += ["", "== Values some keys take ==", *_values()]
    lines += [
        "",
        "== The config a run would use (override any value: model.max_depth=9) ==",
        _resolved(cfg).rstrip(),
        "",
        str(cfg.hydra.help.footer).rstrip(),
    ]
    return "\n".join(lines)


def _values() -> list[str]:
    """The names a few keys take, which no config file lists, and the other command."""
    from sweeplab.data.bundled import BUNDLED
    from sweeplab.data.table import Encoding
    from sweeplab.model.tasks import TASKS

    bundled = ", ".join(f"{name} ({task})" for name, (_, task) in BUNDLED.items())
    encodings = ", ".join(e.value for e in Encoding)
    metrics = "; ".join(f"{task.name}: {', '.join(task.metrics)}" for task in TASKS.values())
    return [
        _wrapped(f"dataset.name (with dataset=sklearn): {bundled}"),
        _wrapped(
            f"dataset.encoding, dataset.encode (with dataset=table): {encodings}; how text "
            "columns become numbers (docs/configuration.md, Text columns)"
        ),
        _wrapped(f"sweep.metric: {metrics}; null: rmse, or accuracy for classification"),
        _wrapped(
            "sweeplab-tools: compare runs and sweeps, list and promote registered models, "
            "predict with one, start MLflow's UI on this folder's store (sweeplab-tools --help)"
        ),
    ]


def _wrapped(line: str) -> str:
    """``line`` wrapped to the help's width, its later lines indented."""
    filled = textwrap.fill(line, width=_WIDTH, subsequent_indent="    ", break_on_hyphens=False)
    return filled.replace(_KEEP, " ")


def _listed(group: str, options: list[str], now: str | None) -> str:
    """``group: a, b, c  [now: b]``, wrapped under the group's name."""
    chosen = f"  [now: {now}]" if now is not None else ""
    return _wrapped(f"{group}: {', '.join(options)}{chosen}")


def _option(name: str) -> str:
    """An option's name, with the extra that installs what it needs when that is missing."""
    module, extra = _NEEDS.get(name, (None, None))
    if module is not None and importlib.util.find_spec(module) is None:
        # No-break spaces: the wrapping keeps the option and its install command on one line.
        return f"{name} (extra: {extra})".replace(" ", _KEEP)
    return name


def _resolved(cfg: DictConfig) -> str:
    """The app's config (no ``hydra`` node) with every interpolation resolved, secrets masked."""
    from omegaconf import open_dict

    app = cfg.copy()
    with open_dict(app):
        del app["hydra"]
    try:
        values = OmegaConf.to_container(app, resolve=True, enum_to_str=True)
    except Exception:  # a value that resolves only in a run (a missing env var): show it as is
        values = OmegaConf.to_container(app, resolve=False, enum_to_str=True)
    return OmegaConf.to_yaml(OmegaConf.create(redact_secrets(values)))
