"""Entrypoint: compose the config, then run it once, or once per job of a multirun."""

import gc
import sys
from importlib import metadata
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from sweeplab import __version__
from sweeplab.config import helptext, preflight, schema
from sweeplab.config.schema import Promote
from sweeplab.registry import champion
from sweeplab.run.runner import execute, exit_on_sigterm, summary
from sweeplab.sweep import job
from sweeplab.sweep.parent import Outcome, Sweep
from sweeplab.tracking import tracker
from sweeplab.util import env, process
from sweeplab.util.errors import (
    EXIT_INTERRUPTED,
    TRACEBACK_ARTIFACT,
    RunFailed,
    UserError,
    error_lines,
    error_summary,
    interruption,
)
from sweeplab.util.redact import ScrubbedStream, scrub_files, scrub_hydra_logs, scrub_text

schema.register_configs()


@hydra.main(version_base="1.3", config_path="pkg://sweeplab.conf", config_name="config")
def main(cfg: DictConfig, sweep: Sweep | None = None) -> float | Outcome:
    """Run once from the composed config; return its ``sweep.metric``, or a job's outcome.

    In a multirun the job's outcome goes back to its sweep (its ``value`` is the metric, for
    optimising sweepers). ``sweep``: the sweep a job belongs to, from a launcher that runs it
    in the sweep's process.
    """
    process.configure()  # a launcher's worker enters sweeplab here (idempotent)
    # MLflow takes its client settings (timeouts, retries) only from the environment; a
    # worker started before the sweep's process set them gets them here.
    tracker.set_environ(env.mlflow_client(cfg.tracking))
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.output_subdir is not None:
        # Hydra has just written the config and overrides there, secrets included.
        scrub_files(Path(hydra_cfg.runtime.output_dir, hydra_cfg.output_subdir))
    if hydra_cfg.mode == RunMode.MULTIRUN:
        return job.run_job(cfg, sweep)
    try:
        result = execute(
            cfg,
            hydra_cfg.overrides.task,
            test=cfg.sweep.register is not None,
            cores=process.cores(),
        )
    except UserError as e:
        print(error_lines("sweeplab", e), file=sys.stderr)
        sys.exit(2)
    except RunFailed as e:
        print(
            f"sweeplab: error: run {e.run_id} FAILED: {e} "
            f"(traceback in its artifact {TRACEBACK_ARTIFACT})",
            file=sys.stderr,
        )
        sys.exit(1)
    print(summary(result))
    if cfg.split.test_share > 0 and not cfg.sweep.register:
        print(
            f"test       split.test_share={cfg.split.test_share} of the rows are kept aside and "
            "not scored: a single run is scored on them when it registers its model "
            "(sweep.register=NAME), a sweep's best job always"
        )
    if cfg.sweep.register:
        # The run is logged either way; a registry that refuses is this command's failure.
        try:
            shown = [scrub_text(o) for o in hydra_cfg.overrides.task]
            lines = tracker.call(
                champion.register_run, result, shown, name=str(cfg.sweep.register),
                alias=str(cfg.sweep.alias), always=cfg.sweep.promote == Promote.always,
                alpha=float(cfg.sweep.alpha),
            )  # fmt: skip
            print("\n".join(lines))
        except Exception as e:
            print(f"sweeplab: error: run {result.run_id} is logged, but registering its model "
                  f"failed: {e if isinstance(e, UserError) else error_summary(e)}",
                  file=sys.stderr)  # fmt: skip
            sys.exit(1)
    return result.metrics.get(result.metric, float("nan"))


# Hydra's flags that print the config instead of running it.
_PRINTS_CONFIG = {"--cfg", "-c", "--info", "-i"}


def cli() -> None:
    """Console entry point (`sweeplab`, `python -m sweeplab`): run, then exit promptly."""
    if "--version" in sys.argv[1:]:
        # Hydra's own --version names only Hydra.
        versions = {name: metadata.version(name) for name in ("hydra-core", "mlflow")}
        print(f"sweeplab {__version__} (hydra-core {versions['hydra-core']}, "
              f"mlflow {versions['mlflow']})")  # fmt: skip
        return
    if {"--help", "-h"}.intersection(sys.argv[1:]):
        # Hydra's own --help lists neither launchers nor sweepers, nor resolved values.
        try:
            print(helptext.text(sys.argv[1:]))
        except UserError as e:  # a bad override or config file: the same one line as a run's
            print(error_lines("sweeplab", e), file=sys.stderr)
            sys.exit(2)
        return
    exit_on_sigterm()
    scrub_hydra_logs()
    if _PRINTS_CONFIG.intersection(arg.split("=")[0] for arg in sys.argv[1:]):
        # Hydra prints the config itself, tracking.uri included.
        sys.stdout = ScrubbedStream(sys.stdout)
    try:
        # Hydra reports a typo or a wrong type in several lines and a hint about tracebacks;
        # composing once first turns those into one line, as for every other bad value.
        preflight.check(sys.argv[1:])
    except UserError as e:
        print(error_lines("sweeplab", e), file=sys.stderr)
        sys.exit(2)
    # A sweep's sweeper has ended its runs by the time an interrupt or an error gets here
    # (sweeplab.sweep.owner); a single run ends its own.
    try:
        main()
    except KeyboardInterrupt:
        print("\nsweeplab: interrupted; the run(s) in progress are marked KILLED", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except SystemExit as e:
        # SIGTERM arrives as SystemExit(143).
        if interruption(e):
            print("sweeplab: terminated; the run(s) in progress are marked KILLED", file=sys.stderr)
        raise
    finally:
        # MLflow, scikit-learn and SQLAlchemy leave ~3,000 modules loaded; a garbage
        # collector that still tracks their objects makes interpreter teardown take ~0.9 s.
        # Frozen objects are skipped; exit handlers still run and flush everything.
        gc.freeze()


if __name__ == "__main__":
    cli()
