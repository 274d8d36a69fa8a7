"""One run: validate the config, generate data, train, evaluate and log it to MLflow."""

import hashlib
import json
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

from sweeplab import config
from sweeplab.redact import redact_uri

# Overrides that say where to log rather than what to train stay out of run names.
_NOT_IN_RUN_NAME = ("tracking", "experiment", "run_name", "sweep", "hydra", "model=", "+model=")

# Tags a run that raised carries; MLflow keeps tag values up to 8,000 characters.
ERROR_TAG = "sweeplab.error"
_MAX_ERROR_CHARS = 2000
TRACEBACK_ARTIFACT = "error/traceback.txt"


@dataclass(frozen=True)
class RunResult:
    """What one run produced and where it is stored."""

    experiment_name: str
    experiment_id: str
    run_id: str
    run_name: str
    metrics: dict[str, float]
    model_uri: str
    tracking_uri: str
    # True when sweep.skip_finished found an earlier FINISHED run with the same fingerprint.
    reused: bool = False


def shown_overrides(overrides: Sequence[str]) -> list[str]:
    """The overrides that change what is trained, ``model.`` prefixes dropped."""
    return [o.removeprefix("model.") for o in overrides if not o.startswith(_NOT_IN_RUN_NAME)]


def default_run_name(cfg: DictConfig, overrides: Sequence[str]) -> str:
    """The model's name followed by the overrides that changed what is trained."""
    return " ".join([str(cfg.model.name), *shown_overrides(overrides)])


def fingerprint(cfg: DictConfig) -> str:
    """A stable hash of what decides a run's result: the dataset and the model config."""
    decisive = OmegaConf.to_container(
        OmegaConf.masked_copy(cfg, ["dataset", "model"]), resolve=True
    )
    return hashlib.sha256(json.dumps(decisive, sort_keys=True).encode()).hexdigest()[:16]


def error_summary(error: BaseException) -> str:
    """The exception as one bounded line: its type and the first line of its message."""
    lines = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    return redact_uri(text[:_MAX_ERROR_CHARS])


def execute(
    cfg: DictConfig,
    overrides: Sequence[str] = (),
    *,
    parent_run_id: str | None = None,
    extra_tags: Mapping[str, str] | None = None,
    input_example: bool = True,
) -> RunResult:
    """Validate the config, then generate data, train, evaluate and log one run.

    ``parent_run_id`` nests the run under a sweep's parent run; ``input_example`` stores five
    validation rows with the model.
    """
    config.validate(cfg)
    cfg = config.with_fixed_end_date(cfg)
    # MLflow takes about a second to import: loading it after validation lets bad input
    # fail at once.
    import mlflow

    from sweeplab import models, tracking, train
    from sweeplab.datasets import DATASETS

    client = tracking.connect(cfg.tracking)
    uri = str(cfg.tracking.uri)
    experiment = tracking.ensure_experiment(client, cfg.experiment, cfg.tracking.artifact_location)
    config_fingerprint = fingerprint(cfg)
    if cfg.sweep.skip_finished and (
        earlier := tracking.finished_run(client, experiment, config_fingerprint)
    ):
        return RunResult(
            experiment_name=experiment.name,
            experiment_id=experiment.experiment_id,
            run_id=earlier.info.run_id,
            run_name=str(earlier.info.run_name),
            metrics=dict(earlier.data.metrics),
            model_uri=f"runs:/{earlier.info.run_id}/model",
            tracking_uri=uri,
            reused=True,
        )
    spec = DATASETS[cfg.dataset.name]
    generator_args = {
        k: v for k, v in cfg.dataset.items() if k not in ("name", "test_size", "split_seed")
    }
    run_name = cfg.run_name or default_run_name(cfg, overrides)
    tags = {**tracking.run_tags(config_fingerprint, config.launch_dir()), **(extra_tags or {})}
    # Data and training happen inside the run, so their failures are recorded, not lost.
    with mlflow.start_run(
        experiment_id=experiment.experiment_id,
        run_name=run_name,
        tags=tags,
        parent_run_id=parent_run_id,
    ) as run:
        try:
            mlflow.log_params(
                {
                    **config.hyperparameters(cfg.model),
                    "model": cfg.model.name,
                    **{f"dataset.{k}": v for k, v in cfg.dataset.items()},
                }
            )
            shown = cfg.copy()
            shown.tracking.uri = redact_uri(uri)
            tracking.log_config(
                OmegaConf.to_yaml(shown, resolve=True), [redact_uri(o) for o in overrides]
            )

            frame = spec.generate(**generator_args)
            data = train.split(frame, spec, cfg.dataset.test_size, cfg.dataset.split_seed)
            name, target = cfg.dataset.name, spec.target
            tracking.log_dataset(data.X_train.join(data.y_train), name, target, "training")
            tracking.log_dataset(data.X_val.join(data.y_val), name, target, "validation")

            estimator = models.build(cfg.model)
            predictions = train.fit(estimator, data)
            metrics = train.evaluate(data.y_val, predictions)
            mlflow.log_metrics(metrics)
            model_uri = tracking.log_model(
                estimator,
                data.X_val.head(5),
                predictions,
                models.estimator_for(cfg.model).skops_trusted_types,
                with_example=input_example,
            )
        except Exception as e:
            # The `with` block marks the run FAILED; these say why, in the UI and in searches.
            mlflow.set_tag(ERROR_TAG, error_summary(e))
            mlflow.log_text(redact_uri(traceback.format_exc()), TRACEBACK_ARTIFACT)
            raise
    return RunResult(
        experiment_name=experiment.name,
        experiment_id=experiment.experiment_id,
        run_id=run.info.run_id,
        run_name=run_name,
        metrics=metrics,
        model_uri=model_uri,
        tracking_uri=uri,
    )


def summary(result: RunResult) -> str:
    """The lines printed when a run ends: where it is, how it scored, how to look at it."""
    from sweeplab.tracking import ui_hint

    scores = "  ".join(f"{k} {v:.4g}" for k, v in result.metrics.items())
    reused = "  (reused: sweep.skip_finished found this FINISHED run)" if result.reused else ""
    return (
        f"experiment {result.experiment_name!r} (id {result.experiment_id})\n"
        f"run        {result.run_name!r}  id {result.run_id}{reused}\n"
        f"metrics    {scores}\n"
        f"view       {ui_hint(result.tracking_uri, result.experiment_id, result.run_id)}"
    )
