"""``hydra/launcher=joblib`` in sweeplab: Hydra's joblib launcher, which goes on when a worker dies.

When a joblib (loky) worker process dies, from the kernel's out-of-memory killer or any other
SIGKILL, joblib raises TerminatedWorkerError and kills the pool's other workers too: Hydra's
launcher then stops the whole sweep with a 30-line traceback, and the jobs not yet started
never run. This launcher (its work is in ``_core``) records each job that was running as FAILED
with why, then starts a new pool for the jobs that had not started. The option that names it is
a YAML file in sweeplab's own config folder (sweeplab/conf/hydra/launcher/joblib.yaml): other
Hydra apps keep Hydra's. Hydra's plugin scan imports this module in every Hydra app: joblib and
sweeplab are imported only inside the methods.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hydra.core.utils import JobReturn
from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher as HydraJoblib

if TYPE_CHECKING:
    from sweeplab.sweep.parent import Sweep


class JoblibLauncher(HydraJoblib):  # type: ignore[misc]  # untyped plugin
    """Hydra's JoblibLauncher that starts its workers early, and goes on when one dies.

    A sweeplab sweep's jobs run in its workers (sweeplab.sweep.owner.SweepLauncher).
    """

    in_process = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sweep: Sweep | None = None
        # The pool's workers importing what a job needs (joblib_pool.warm_up), until a launch.
        self.warming: Any = None

    def setup(self, *, hydra_context: Any, task_function: Any, config: Any) -> None:
        """Keep Hydra's context; for sweeplab's jobs, have the workers start importing."""
        from sweeplab.sweep import joblib_pool, owner

        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        if owner.runs_sweeplab(task_function):
            # Before the sweep opens its store and parent run, which this then overlaps.
            self.warming = joblib_pool.warm_up(self.joblib)

    def join(self, sweep: "Sweep") -> None:
        """Run the coming jobs as ``sweep``'s."""
        self.sweep = sweep

    def leave(self) -> None:
        """The sweep is over: end the pool's workers now (sweeplab.sweep.joblib_pool)."""
        from sweeplab.sweep import joblib_pool

        self.sweep = None
        joblib_pool.stop_workers()

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        """Run the jobs on joblib's loky workers; return one JobReturn per job, in order."""
        from . import _core  # imports joblib and sweeplab: only when jobs run

        return _core.launch(self, job_overrides, initial_job_idx)
