"""Entrypoint: compose the config, validate it, then train and log one MLflow run."""

import gc
import hashlib
import json
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from sweeplab import config
from sweeplab.errors import UserError
from sweeplab.redact import redact_uri

config.register_configs()

# Overrides that say where to log rather than what to train stay out of run names.
_NOT_IN_RUN_NAME = ("tracking", "experiment", "run_name", "hydra", "model=", "+model=")


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


def default_run_name(cfg: DictConfig, overrides: Sequence[str]) -> str:
    """The model's name followed by the overrides that changed what is trained."""
    shown = [o.removeprefix("model.") for o in overrides if not o.startswith(_NOT_IN_RUN_NAME)]
    return " ".join([str(cfg.model.name), *shown])


def fingerprint(cfg: DictConfig) -> str:
    """A stable hash of what decides a run's result: the dataset and the model config."""
    decisive = OmegaConf.to_container(
        OmegaConf.masked_copy(cfg, ["dataset", "model"]), resolve=True
    )
    return hashlib.sha256(json.dumps(decisive, sort_keys=True).encode()).hexdigest()[:16]


def execute(cfg: DictConfig, overrides: Sequence[str] = ()) -> RunResult:
    """Validate the config, then generate data, train, evaluate and log one run."""
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
    spec = DATASETS[cfg.dataset.name]
    generator_args = {
        k: v for k, v in cfg.dataset.items() if k not in ("name", "test_size", "split_seed")
    }
    run_name = cfg.run_name or default_run_name(cfg, overrides)
    tags = tracking.run_tags(fingerprint(cfg), config.launch_dir())
    # Data and training happen inside the run, so their failures are recorded, not lost.
    with mlflow.start_run(
        experiment_id=experiment.experiment_id, run_name=run_name, tags=tags
    ) as run:
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
        )
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
    return (
        f"experiment {result.experiment_name!r} (id {result.experiment_id})\n"
        f"run        {result.run_name!r}  id {result.run_id}\n"
        f"metrics    {scores}\n"
        f"view       {ui_hint(result.tracking_uri, result.experiment_id, result.run_id)}"
    )


@hydra.main(version_base="1.3", config_path="pkg://sweeplab.conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """Run once from the composed config and return the validation rmse for sweepers."""
    try:
        result = execute(cfg, HydraConfig.get().overrides.task)
    except UserError as e:
        print(f"sweeplab: error: {e}", file=sys.stderr)
        sys.exit(2)
    print(summary(result))
    return result.metrics["rmse"]


def _terminate(signum: int, frame: object) -> None:
    # Unwinding through the active `with mlflow.start_run()` ends the run instead of
    # leaving it RUNNING, as the default SIGTERM action (die at once) would.
    raise SystemExit(128 + signum)


def cli() -> None:
    """Console entry point (`sweeplab`, `python -m sweeplab`): run, then exit promptly."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        main()
    finally:
        # MLflow, scikit-learn and SQLAlchemy leave ~3,000 modules loaded; a garbage
        # collector that still tracks their objects makes interpreter teardown take ~0.9 s.
        # Frozen objects are skipped; exit handlers still run and flush everything.
        gc.freeze()


if __name__ == "__main__":
    cli()
