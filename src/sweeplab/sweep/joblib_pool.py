"""The pool of joblib workers a ``hydra/launcher=joblib`` sweep runs on: started early, ended fast.

sweeplab's joblib launcher (hydra_plugins.sweeplab_joblib_launcher) runs the jobs on this pool:
it starts the workers as it is set up, and ends them when the sweep leaves it.
"""

import logging
from typing import Any

log = logging.getLogger(__name__)


def settings_of(joblib: dict[str, Any]) -> dict[str, Any]:
    """joblib.Parallel's arguments, as Hydra's launcher makes them from its config."""
    from hydra_plugins.hydra_joblib_launcher import _core  # imports joblib: only when used

    settings: dict[str, Any] = {**joblib, "backend": "loky"}
    _core.process_joblib_cfg(settings)
    return settings


def warm_up(joblib: dict[str, Any]) -> Any:
    """Start the pool's workers now, importing what a job needs; the warm-up under way.

    Each worker spends ~2.5 s importing scikit-learn, MLflow and skops before its first job.
    The launcher starts them as it is set up, before the sweep opens its store and parent run,
    so that this overlaps that instead of following it. joblib keeps the pool for the launch,
    which asks for one with the same settings and waits for the warm-up first (``warmed``).
    """
    from joblib import Parallel, delayed, effective_n_jobs  # ~0.1 s: only for joblib sweeps

    from sweeplab.run import runner

    settings = settings_of(joblib)
    workers = effective_n_jobs(settings.get("n_jobs"))
    return Parallel(**settings, return_as="generator_unordered")(
        delayed(runner.preload)() for _ in range(workers)
    )


def warmed(warming: Any) -> None:
    """Wait for a warm-up (``warm_up``'s) to end; a failed one only means cold workers."""
    if warming is not None:
        try:
            for _ in warming:
                pass
        except Exception as e:  # the jobs will meet and report the same problem
            log.debug(f"warming the joblib workers failed: {e!r}")


def stop_workers() -> None:
    """End the pool's workers now, without waiting for them: the sweep is over.

    At exit joblib would wait for each idle worker to tear MLflow and scikit-learn down
    (~1 s). loky keeps the pool under a private name; without it, that wait stays.
    """
    from joblib.externals.loky import reusable_executor  # only for joblib sweeps

    executor = getattr(reusable_executor, "_executor", None)
    if executor is not None:
        executor.shutdown(wait=False, kill_workers=True)
