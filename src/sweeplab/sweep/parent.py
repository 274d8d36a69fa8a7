"""Multiruns: a parent run before the first job, jobs nested under it, a comparison at the end."""

import math
import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import OverrideType
from hydra.core.utils import JobStatus
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf, read_write

from sweeplab.compare import ties
from sweeplab.config import schema
from sweeplab.config.preflight import describe, explain_model_key
from sweeplab.config.schema import ConfigError, Promote
from sweeplab.model import estimators
from sweeplab.run.plan import default_run_name, short_forms, shown_overrides
from sweeplab.run.runner import Recorder
from sweeplab.tracking import tracker
from sweeplab.tracking.entries import NewRun, Store
from sweeplab.tracking.places import check_server, is_server, require_answer
from sweeplab.tracking.tags import (
    ERROR_TAG,
    OVERRIDES_TAG,
    SWEEP_ALPHA_TAG,
    SWEEP_DIRECTION_TAG,
    SWEEP_METRIC_TAG,
    SWEEP_TAG,
)
from sweeplab.util import env, plotting, process
from sweeplab.util.errors import UserError, error_summary
from sweeplab.util.launch import launch_dir
from sweeplab.util.redact import redact_uri, scrub_files, scrub_text

# Hydra hands these to every job through `hydra.job.env_set`, which travels with the job's
# config to any launcher's workers (joblib processes, Ray nodes).
PARENT_RUN_ENV = env.PARENT_RUN_ID.name

# The parent run and the comparison use one value of these for the whole sweep.
_FIXED_IN_A_SWEEP = ("tracking", "experiment", "sweep")
# What an experiment named after the data is named by (sweeplab.data.base.Source.label).
_NAME_THE_DATA = ("dataset", "dataset.path", "dataset.name")

if TYPE_CHECKING:  # MLflow and pandas load only once a sweep needs them
    from hydra.core.utils import JobReturn
    from mlflow import MlflowClient
    from mlflow.entities import Run

    from sweeplab.compare.results import Comparison


@dataclass(frozen=True)
class SweepPlan:
    """What a sweeper planned before any run exists: its jobs, what they vary, how to rank them."""

    count: int  # jobs (0: as many as the sweeper picks)
    swept: list[str]  # the keys the jobs vary, in the command line's order
    metric: str
    direction: str
    unit: str = "job"  # what the parent run's name counts: jobs, or an Optuna study's trials
    # Whether every job was composed once already (so the launcher need not check again).
    jobs_checked: bool = False
    # The sweeper's own tags on the parent run, and overrides of Hydra's every job gets.
    tags: dict[str, str] = field(default_factory=dict)
    hydra_overrides: list[str] = field(default_factory=list)
    # Runs of earlier sweeps that this one continues (a resumed Optuna study's trials): its
    # name, comparison and plots cover them too.
    earlier_runs: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    """How one job of a sweep ended: what its task function hands back to the sweep, once.

    Its run (if it has one) is the record; this is the reply. A job logged in the background
    of the sweep's own process returns it before its run is logged ("LOGGING"); it is filled
    in once logged, and the sweep's recorder drains before anyone reads it.
    """

    job: int
    overrides: list[str]
    status: str = "LOGGING"  # then FINISHED, REUSED, FAILED or NOT_STARTED
    text: str = ""  # the job's line: what it trained, then its metric or why it did not finish
    run_id: str | None = None
    value: float = math.nan  # the sweep's metric, NaN unless FINISHED or REUSED
    error: str = ""

    def settle(self, status: str, text: str, **fields: Any) -> "Outcome":
        """Fill in how the job ended; return the outcome."""
        self.status, self.text = status, text
        for name, value in fields.items():
            setattr(self, name, value)
        return self


# One line at a time on the console, whichever thread (a job's logging callback) says it.
_say_lock = threading.Lock()


def say(line: str) -> None:
    """Print ``line`` whole: one write, which Hydra's log lines and other threads cannot split."""
    with _say_lock:
        _write(line)


def _write(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@dataclass
class Sweep:
    """A multirun: its parent run, how its jobs are ranked, their outcome, and its cleanup.

    The sweeper owns it (sweeplab.sweep.owner): ``start`` creates it (and its parent run)
    before the first job; ``finish`` ranks the jobs and ends the parent; ``end`` ends an
    interrupted one with everything it left RUNNING. Launchers that run its jobs in this
    process hand it to each job.
    """

    tracking_uri: str
    experiment_id: str
    experiment_name: str
    parent_run_id: str
    run_name: str
    metric: str
    direction: str
    # The sweep's command-line overrides (model.max_depth=3,6,9 ...).
    overrides: list[str]
    # sweep.alpha: cross-validated jobs whose paired p-value against the best reaches it
    # are tied with the best.
    alpha: float = ties.ALPHA
    # Hydra's output folder for the sweep; each job writes its outcome in a subfolder.
    sweep_dir: str = ""
    # Logs the runs of jobs that run in this process (Hydra's basic launcher) in the
    # background; None when the jobs run in other processes.
    recorder: Recorder | None = None
    # How many jobs did not finish, once finish() has compared them.
    failed_jobs: int = 0
    # Lines the sweeper adds to the closing report.
    notes: list[str] = field(default_factory=list)
    # How many jobs it plans (0: as many as its sweeper picks), for the progress count.
    jobs: int = 0
    # The jobs' outcomes as they were handed back, by job number (said()).
    outcomes: dict[int, Outcome] = field(default_factory=dict)
    # sweep.register / alias / promote: the registered model the best job's model joins.
    register: str | None = None
    alias: str = "champion"
    always: bool = False
    # Why registering the best model failed, once finish() has tried.
    register_error: str = ""
    # Whether the parent run has ended (finished, or ended by an interrupt).
    ended: bool = False
    # The keys whose values differ between its jobs: a job's lines name its values of these.
    swept: list[str] = field(default_factory=list)
    # The sweep's config, which composes any job's (this process's alone: the best job's
    # test part is made from it).
    config: DictConfig | None = None
    # Runs of earlier sweeps it continues (SweepPlan.earlier_runs), compared with its own.
    earlier_runs: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """Whether jobs did not finish, or the best model was not registered as asked."""
        return bool(self.failed_jobs or self.register_error)

    def said(self, outcome: Outcome) -> None:
        """Take a job's outcome as it is handed back, and print its line with the count.

        Each job's once, wherever it ran: its line says how many of the sweep's jobs have
        ended, in the order they end.
        """
        with _say_lock:  # counted and printed together, so that the counts come in order
            if outcome.job in self.outcomes:
                return
            self.outcomes[outcome.job] = outcome
            total = f"/{self.jobs}" if self.jobs else ""
            _write(f"[{len(self.outcomes)}{total}] #{outcome.job} {outcome.text}")

    def launched(self, returns: "Sequence[JobReturn]") -> list[Outcome | None]:
        """The outcomes a launch handed back, each said once; None where a job raised.

        Launchers that run jobs elsewhere (joblib, Ray) say each as it comes; this says the
        rest (jobs of this process once logged, any other launcher's).
        """
        if self.recorder is not None:
            self.recorder.drain()  # outcomes logged in the background are settled then
        outcomes: list[Outcome | None] = []
        for ret in returns:
            value = ret.return_value if ret.status == JobStatus.COMPLETED else None
            outcome = value if isinstance(value, Outcome) else None
            if outcome is not None:
                self.said(outcome)
            outcomes.append(outcome)
        return outcomes

    def finish(self) -> str:
        """Rank the jobs, log the comparison to the parent run, end it; return the report."""
        if self.recorder is not None:
            self.recorder.drain()
        # Hydra saved the sweep's config here after this sweep started, secrets included.
        scrub_files(Path(self.sweep_dir))
        # What the store does, the tracking process does: this one has its threads.
        shared = replace(self, recorder=None, config=None)
        comparison = tracker.call(_compare_in_store, shared)
        try:
            tested = self._score_test(comparison)
        except Exception as e:  # the sweep's runs are logged and ranked; say what did not happen
            tested = [f"test     could not score the best job on its test part: {error_summary(e)}"]
        ended = tracker.call(_end_in_store, shared, comparison)
        self.notes.extend(tested)
        self.failed_jobs = ended.failed_jobs
        self.notes.extend(ended.notes)
        self.register_error = ended.register_error
        self.ended = True
        return report(self, ended.comparison)

    def _score_test(self, comparison: "Comparison") -> list[str]:
        """Score the best job's model on its test part, if it has one; the report's line.

        Its test metrics (test_rmse ...) go to the best job's run and the parent: the one
        job chosen on validation, never the others, so nothing is chosen on the test part.
        """
        from hydra.core.global_hydra import GlobalHydra

        from sweeplab.run import plan
        from sweeplab.tracking import record

        best = comparison.best
        if best is None or self.config is None or not GlobalHydra.instance().is_initialized():
            return []
        overrides = str(best["overrides"]).split()
        loader = GlobalHydra.instance().config_loader()
        job = loader.load_sweep_config(self.config, overrides)
        if float(job.split.test_share) == 0:
            return []
        planned = plan.make(job, overrides)
        part = planned.split
        assert part.X_test is not None and part.y_test is not None
        run_id = str(best["run_id"])
        scores = tracker.call(
            record.log_test_scores, self.tracking_uri, [run_id, self.parent_run_id], run_id,
            part.X_test, part.y_test, planned.task,
        )  # fmt: skip
        test = scores[f"test_{self.metric}"]
        return [
            f"test     job #{best['job']}: test_{self.metric} {test:.6g} on the "
            f"{len(part.X_test)} rows kept aside (split.test_share={job.split.test_share}); it "
            f"was chosen on validation {self.metric} {best[self.metric]:.6g}"
        ]

    def _register_best(self, client: "MlflowClient", comparison: "Comparison") -> list[str]:
        """Register the best job's model and promote it; the report's lines on it."""
        from sweeplab.registry import champion

        assert self.register is not None
        best = comparison.best
        if best is None:
            self.register_error = "no job finished"
            return [f"registry nothing registered in {self.register!r}: no job finished"]
        try:
            lines = champion.register_and_promote(
                client, self.register, str(best["run_id"]), alias=self.alias,
                always=self.always, metric=self.metric, direction=self.direction,
                parent_run_id=self.parent_run_id,
                description=f"The best job of sweep {self.run_name!r} (parent run "
                f"{self.parent_run_id}), ranked by {self.metric}: {' '.join(self.overrides)}",
                noted_on=self.parent_run_id, alpha=self.alpha,
            )  # fmt: skip
        except Exception as e:  # the sweep's runs are logged; say what did not happen
            self.register_error = str(e) if isinstance(e, UserError) else error_summary(e)
            return [f"registry could not register the best model in {self.register!r}: "
                    f"{self.register_error}"]  # fmt: skip
        return lines

    def end(self, status: str, why: str) -> None:
        """End the interrupted sweep: its queued and RUNNING children, then its parent."""
        if self.recorder is not None:
            self.recorder.abort(why)
        if self.ended:
            return
        self.ended = True
        tracker.call(
            _end_open_runs, self.tracking_uri, self.experiment_id, self.parent_run_id, status, why
        )


@dataclass(frozen=True)
class Ended:
    """What ending a sweep in its store found: the comparison, and what did not go well."""

    comparison: "Comparison"
    failed_jobs: int
    notes: list[str]
    register_error: str


def _compare_in_store(sweep: Sweep) -> "Comparison":
    """Compare the sweep's jobs and log that to its parent."""
    from sweeplab.tracking import record

    require_answer(sweep.tracking_uri)  # seconds sooner than MLflow's retries
    client = record.store_client(sweep.tracking_uri)
    return _compare_and_log(client, client.get_run(sweep.parent_run_id), sweep)


def _end_in_store(sweep: Sweep, comparison: "Comparison") -> Ended:
    """Register the best job's model, then end the parent run."""
    from sweeplab.tracking import record

    client = record.store_client(sweep.tracking_uri)
    failed_jobs = len(comparison.failed())
    notes = sweep._register_best(client, comparison) if sweep.register else []
    client.set_terminated(sweep.parent_run_id, "FAILED" if failed_jobs else "FINISHED")
    return Ended(comparison, failed_jobs, notes, sweep.register_error)


def _end_open_runs(
    tracking_uri: str, experiment_id: str, parent_run_id: str, status: str, why: str
) -> None:
    """End a sweep's RUNNING children and then its parent ``status``, tagged with ``why``."""
    from sweeplab.compare.results import running_children
    from sweeplab.tracking import record

    require_answer(tracking_uri)  # seconds sooner than MLflow's retries
    client = record.store_client(tracking_uri)
    # Workers killed with the sweep (joblib terminates them) could not end their own runs.
    for run in running_children(client, experiment_id, parent_run_id):
        client.set_tag(run.info.run_id, ERROR_TAG, why)
        client.set_terminated(run.info.run_id, status)
    client.set_tag(parent_run_id, ERROR_TAG, why)
    client.set_terminated(parent_run_id, status)


def jobs_at_once(launcher: DictConfig) -> int:
    """How many jobs ``launcher`` (hydra.launcher) runs at once on this machine.

    Hydra's basic launcher: one. joblib: its n_jobs (-1: every core, -2: all but one).
    Launchers that send jobs to a cluster (Ray, SLURM) give each job the cores its
    scheduler grants: as many as the machine has is the bound for this one.
    """
    target = str(launcher.get("_target_", ""))
    if target.endswith("BasicLauncher"):
        return 1
    if (n := launcher.get("n_jobs")) is not None:
        return max(1, int(n) if int(n) > 0 else process.cores() + 1 + int(n))
    return process.cores()


def job_label(
    cfg: DictConfig, overrides: list[str], *, swept: Sequence[str] = (), name_model: bool = False
) -> str:
    """What a job (or a sweep) trains: ``max_depth=3 n_estimators=50``, ``model=ridge ...``.

    ``swept``: the sweep's swept keys; a job is then told by its values of those alone (the
    sweep's first line gives what every job shares). ``name_model`` starts it with the
    model's name when the overrides do not pick one.
    """
    if swept:
        own = [o for o in overrides if o.lstrip("+~").partition("=")[0] in swept]
        overrides = own or overrides
    shown = shown_overrides(overrides)
    picked = [o for o in overrides if o.lstrip("+").startswith("model=")]
    if picked:
        return " ".join([*picked, *shown])
    if name_model:
        return default_run_name(cfg, overrides)
    return " ".join(shown) or "(defaults)"


def swept_keys(cfg: DictConfig, jobs: list[list[str]]) -> list[str]:
    """The keys whose values differ between the sweep's jobs, in the command line's order.

    Without the job list (a sweeper that picks values as it goes), the keys it sweeps.
    """
    if not jobs:
        params = cfg.hydra.sweeper.get("params") or {}
        parsed = OverridesParser.create().parse_overrides(list(cfg.hydra.overrides.task))
        return [*map(str, params), *(o.key_or_group for o in parsed if o.is_sweep_override())]
    values: dict[str, set[str]] = {}
    for overrides in jobs:
        for line in overrides:
            key, _, value = line.lstrip("+~").partition("=")
            values.setdefault(key, set()).add(value)
    return [key for key, seen in values.items() if len(seen) > 1]


def sweep_name(
    cfg: DictConfig, task: list[str], swept: list[str], jobs: int, unit: str = "job"
) -> str:
    """The parent run's name: what all its jobs share, what is swept, how many jobs.

    ``max_depth (md) x n_estimators (ne): 9 jobs of random_forest``, and with values set for
    every job, ``ridge n_rows=300 · alpha: 3 jobs``. The UI's name column shows the first
    ~20 characters: what sets the sweep apart from others of the same grid (the values all
    its jobs share) comes first, then the swept keys with the short forms the jobs' run names
    use (run.plan.short_forms). An Optuna sweep counts ``trials``.
    """
    forms = short_forms(swept)

    def shown(key: str) -> str:
        name = key.rpartition(".")[2]  # as the jobs' names and the shared values give it
        short = forms.get(key, name)
        return name if short == name else f"{name} ({short})"

    keys = " x ".join(map(shown, swept)) or "no swept values"
    count = f"{jobs} {unit}{'s' * (jobs != 1)}" if jobs else f"{unit}s as the sweeper picks them"
    shared = [o for o in task if o.lstrip("+~").partition("=")[0] not in swept]
    picked = any(o.lstrip("+").startswith("model=") for o in shared)
    label = estimators.model_label(cfg.model)
    parts = (o.partition("=") for o in shown_overrides(shared))
    fixed = [key.rpartition(".")[2] + sep + value for key, sep, value in parts]
    lead = " ".join([label, *fixed] if picked else fixed)
    of = "" if "model" in swept or picked else f" of {label}"
    return f"{lead} · {keys}: {count}{of}" if lead else f"{keys}: {count}{of}"


def check_overrides(cfg: DictConfig) -> None:
    """Refuse sweeping a value the whole sweep shares (where to log, how to rank)."""
    parsed = OverridesParser.create().parse_overrides(list(cfg.hydra.overrides.task))
    swept = {
        str(o.key_or_group): str(o.input_line).partition("=")[2]
        for o in parsed
        if o.is_sweep_override()
    }
    # Optuna's search space may be given in the sweeper's config instead.
    swept.update({str(k): str(v) for k, v in (cfg.hydra.sweeper.get("params") or {}).items()})
    for key, values in swept.items():
        if key.startswith(_FIXED_IN_A_SWEEP):
            raise ConfigError(
                key,
                values,
                "cannot vary within one sweep: its parent run, comparison and registration use "
                "one store, experiment, metric and registered model; run one sweep per value",
            )
        if key in _NAME_THE_DATA and schema.experiment_named_after_data(cfg):
            raise ConfigError(
                key,
                values,
                "varies the data that names the experiment, and a sweep's runs share one: "
                "name it, e.g. experiment.name=my_comparison",
            )


def check_jobs_compose(cfg: DictConfig, jobs: list[list[str]]) -> None:
    """Raise Hydra's own error now for a job whose overrides do not compose.

    Hydra composes the jobs only after this callback; a typo found then would leave a parent
    run with no children. Composing each job costs ~65 ms, so plain ``key=value`` overrides
    are tried on a copy of the config instead, and only the rest (config groups, ``+key``)
    or values the copy refuses are composed for real.
    """
    loader = GlobalHydra.instance().config_loader()
    parser = OverridesParser.create()
    groups = set(cfg.hydra.runtime.choices)
    trial = cfg.copy()
    tried: set[str] = set()
    for overrides in jobs:
        for line in overrides:
            if line in tried:
                continue
            tried.add(line)
            override = parser.parse_override(line)
            plain = (
                override.type == OverrideType.CHANGE
                and override.package is None
                and override.key_or_group not in groups
                and not override.key_or_group.startswith("hydra")
            )
            try:
                if not plain:
                    raise ValueError(line)
                OmegaConf.update(trial, override.key_or_group, override.value(), merge=True)
            except Exception:
                # Hydra's own composition has the final word.
                _compose_job(loader, cfg, overrides)


def _compose_job(loader: Any, cfg: DictConfig, overrides: list[str]) -> None:
    """Compose one job as Hydra will; raise UserError naming what does not compose."""
    try:
        loader.load_sweep_config(cfg, overrides)
    except HydraException as e:
        message = explain_model_key(
            describe(e, overrides), overrides, lambda others: loader.load_sweep_config(cfg, others)
        )
        raise UserError(message) from None


def ranking(cfg: DictConfig, jobs: list[list[str]]) -> tuple[str, str]:
    """The metric and direction that rank the sweep's jobs: sweep.*, else the task's own.

    The task comes from the sweep's own dataset; when that is incomplete without the swept
    values (a swept `dataset.path`), from the first job's.
    """
    from sweeplab.model.tasks import Task
    from sweeplab.run import plan

    task: Task | None
    try:
        task = plan.task_of(cfg)
    except UserError:
        if jobs:
            first = GlobalHydra.instance().config_loader().load_sweep_config(cfg, jobs[0])
            task = plan.task_of(first)
        elif cfg.sweep.metric is None:
            raise
        else:  # the sweeper decides each job's data; the metric is the user's word
            task = None
    # A metric the task does not have would leave every job NOT_STARTED: refuse it now.
    ranked = plan.ranking(cfg.sweep, task)
    _check_first_job(cfg, jobs)
    return ranked


def _check_first_job(cfg: DictConfig, jobs: list[list[str]]) -> None:
    """Refuse what the first job's data cannot take now, before the parent run exists, rather
    than in every job: a split it cannot make (an order column it lacks, more folds than rows),
    and for a file of the user's its problems and the model's with it (all in one pass)."""
    from sweeplab.data import source_of
    from sweeplab.model import splits
    from sweeplab.run import plan

    first = cfg
    if jobs:
        first = GlobalHydra.instance().config_loader().load_sweep_config(cfg, jobs[0])
    source = source_of(first.dataset)
    locators = source.locators if source is not None else ()
    if any(OmegaConf.is_missing(first.dataset, key) for key in locators):
        return  # the sweeper picks the data: each job says what is wrong with its own
    if not splits.is_default(first.split) or locators:
        # Its data and split stay cached for the jobs this process runs.
        plan.make(first, jobs[0] if jobs else [])


def _get_ready(cfg: DictConfig, in_process: bool) -> None:
    """Start what the jobs will need while the sweep opens its store and makes its parent run:
    their model's library, the plots' matplotlib (joblib's workers start with their launcher)."""
    remote = tracker.get().remote
    if in_process and not remote:
        # Before MLflow is imported, for the jobs this process runs (the primary config's model).
        estimators.load_serializer(estimators.first_module(cfg.model))
    elif in_process:
        # The jobs train here: import their model (scikit-learn, ~1.3 s) while the tracking
        # process imports MLflow for the parent run, instead of in the first job.
        estimators.import_early(cfg.model)
    if not remote:
        # matplotlib takes ~0.35 s to import and is needed only for the plots at the end:
        # load it while the jobs run (joblib workers leave this process idle; fits release
        # the GIL). A tracking process draws the plots, and loads it (record.prepare).
        loading = threading.Thread(target=plotting.load, name="sweeplab-plotting")
        loading.daemon = True
        loading.start()


def check_sweep(cfg: DictConfig) -> None:
    """Refuse what no sweep can do, whichever sweeper: vary its fixed values, log nowhere."""
    check_overrides(cfg)
    schema.validate_destination(cfg)


def plan_grid(cfg: DictConfig, jobs: list[list[str]]) -> SweepPlan:
    """Plan a sweep whose jobs are known up front (the grid sweeper's): check each composes."""
    check_sweep(cfg)
    check_jobs_compose(cfg, jobs)
    metric, direction = ranking(cfg, jobs)
    return SweepPlan(len(jobs), swept_keys(cfg, jobs), metric, direction, jobs_checked=bool(jobs))


def start(cfg: DictConfig, plan: SweepPlan, in_process: bool) -> Sweep:
    """Create the store, the experiment and the parent run, and point the jobs at it.

    ``in_process``: the jobs run in this process, whose recorder logs their runs.
    """
    _get_ready(cfg, in_process)
    from sweeplab.sweep import cluster
    from sweeplab.tracking import record

    uri = str(cfg.tracking.uri)
    # A server is asked again for the parent run; a local store is kept open for it.
    store = Store.of(cfg, keep=not is_server(uri))
    # The first process to open a fresh sqlite file migrates its schema; doing it here,
    # before any worker starts, keeps parallel workers from racing that migration.
    check_server(cfg.tracking)
    tracker.call(record.check_store, store)
    if cluster.uses_ray(cfg.hydra.launcher):
        cluster.connect(cfg.hydra.launcher, uri)
    task = [scrub_text(o) for o in cfg.hydra.overrides.task]
    count = plan.count + len(plan.earlier_runs) if plan.count else 0
    name = cfg.run_name or sweep_name(cfg, task, plan.swept, count, plan.unit)
    tags = {
        SWEEP_TAG: "true",
        OVERRIDES_TAG: " ".join(task),
        SWEEP_METRIC_TAG: plan.metric,
        SWEEP_DIRECTION_TAG: plan.direction,
        SWEEP_ALPHA_TAG: str(cfg.sweep.alpha),
        "sweeplab.sweep.dir": str(cfg.hydra.sweep.dir),
        **plan.tags,
    }
    parent = tracker.call(record.open_run, NewRun(store, name, tags, launch_dir()))
    if tracker.get().remote:
        # While the jobs run, the tracking process imports what it logs models (jobs run
        # here) and draws the plots at the end with.
        tracker.get().submit(record.prepare, models=in_process, plots=True)
    sweep = Sweep(
        tracking_uri=uri,
        experiment_id=parent.experiment_id,
        experiment_name=parent.experiment_name,
        parent_run_id=parent.run_id,
        run_name=name,
        metric=plan.metric,
        direction=plan.direction,
        overrides=task,
        alpha=float(cfg.sweep.alpha),
        sweep_dir=str(cfg.hydra.sweep.dir),
        recorder=Recorder() if in_process else None,
        jobs=plan.count,
        register=cfg.sweep.register,
        alias=str(cfg.sweep.alias),
        always=cfg.sweep.promote == Promote.always,
        config=cfg,
        earlier_runs=list(plan.earlier_runs),
        swept=list(plan.swept),
    )
    job_env = {PARENT_RUN_ENV: sweep.parent_run_id, env.SWEPT_KEYS.name: ",".join(plan.swept)}
    with read_write(cfg.hydra.overrides):
        # Quoted: Hydra's grammar would read an all-digit run id as a number.
        cfg.hydra.overrides.hydra.extend(
            [f"++hydra.job.env_set.{k}='{v}'" for k, v in job_env.items()]
        )
        cfg.hydra.overrides.hydra.extend(plan.hydra_overrides)
    # Hydra sets env_set in os.environ for each job and deletes it afterwards, while the
    # recorder's thread may be inside an HTTP request that iterates os.environ (proxy
    # lookup): a key deleted mid-iteration fails that request with KeyError. Set here,
    # the keys exist before every job, so Hydra restores them instead of deleting them.
    os.environ.update(job_env)
    print(
        f"sweep {name!r}: parent run {sweep.parent_run_id} in experiment {sweep.experiment_name!r}",
        flush=True,
    )
    return sweep


def _compare_and_log(client: "MlflowClient", parent: "Run", sweep: Sweep) -> "Comparison":
    """Rank the sweep's jobs from the store and attach the comparison to its parent run."""
    from sweeplab.compare import results

    rows = results.rows_of_sweep(client, parent, also=sweep.earlier_runs)
    rows = results.with_folds(client, rows, sweep.metric)
    comparison = results.compare(
        rows, sweep.metric, sweep.direction, sweep.overrides, alpha=sweep.alpha
    )
    results.log_to_parent(client, parent, comparison)
    return comparison


# Rows of the leaderboard a sweep prints; the comparison files on its parent hold them all.
LEADERBOARD_ROWS = 25


def report(sweep: Sweep, comparison: "Comparison") -> str:
    """The sweep's closing summary: outcome, leaderboard, best run, failed jobs, where to look."""
    import pandas as pd

    from sweeplab.compare import results
    from sweeplab.tracking.places import ui_hint

    lines = [
        "",
        f"sweep {sweep.run_name!r} (parent run {sweep.parent_run_id}) in experiment "
        f"{sweep.experiment_name!r}: {results.outcome(comparison.counts)}",
        "",
        results.leaderboard(comparison, limit=LEADERBOARD_ROWS),
        "",
    ]
    if note := results.grouping_note(comparison):
        lines.append(f"note     {note}")
    if note := results.ties_note(comparison):
        lines.append(f"tied     {note}")
    if (best := comparison.best) is not None:
        # Params the best run's model does not have (a sweep over models) stay out.
        swept = " ".join(f"{p}={best[p]}" for p in comparison.swept if not pd.isna(best[p]))
        lines.append(
            f"best     job #{best['job']} {swept}: {sweep.metric} {best[sweep.metric]:.6g} "
            f"(run {best['run_id']}; {sweep.direction})"
        )
    for _, row in comparison.failed().iterrows():
        lines.append(
            f"failed   job #{row['job']} {row['overrides']}: {row['status']} {row['note']}"
        )
    lines.extend(sweep.notes)
    lines.append(
        f"files    parent run artifacts {results.COMPARISON_DIR}/ (comparison.csv, .md, plots); "
        f"again with `sweeplab-tools compare {sweep.parent_run_id} "
        f"--tracking-uri {redact_uri(sweep.tracking_uri)}`"
    )
    lines.append(
        f"view     {ui_hint(sweep.tracking_uri, sweep.experiment_id)}  (the sweep is the "
        "parent row; expand it for the jobs)"
    )
    return "\n".join(lines)


def outcomes_report(sweep: Sweep) -> str:
    """The jobs' outcomes as they were handed back, for when the store cannot tell."""
    lines = []
    for number, job in sorted(sweep.outcomes.items()):
        run = f" run {job.run_id}" if job.run_id else ""
        error = f": {job.error}" if job.error else ""
        lines.append(f"  job #{number} {' '.join(job.overrides)}: {job.status}{run}{error}")
    return "\n".join(lines) or "  (no job handed back an outcome)"


def regenerate(
    client: "MlflowClient",
    parent_run_id: str,
    out: Path | None,
    metric: str | None = None,
    direction: str | None = None,
    alpha: float | None = None,
) -> str:
    """Rebuild a sweep's comparison from the store and log it to its parent again.

    ``metric``, ``direction`` and ``alpha`` rank it differently from the sweep's own settings.
    """
    from sweeplab.compare import results

    parent = client.get_run(parent_run_id)
    tags = parent.data.tags
    if tags.get(SWEEP_TAG) != "true":
        raise UserError(f"run {parent_run_id} is not a sweep's parent run (no sweeplab.sweep tag)")
    experiment = client.get_experiment(parent.info.experiment_id)
    from sweeplab.model import tasks

    # Another metric than the sweep's is ranked in its own sense unless told otherwise.
    ranked_by, direction = tasks.ranking(
        metric, direction, earlier=(tags.get(SWEEP_METRIC_TAG), tags.get(SWEEP_DIRECTION_TAG))
    )
    sweep = Sweep(
        tracking_uri=str(client.tracking_uri),
        experiment_id=experiment.experiment_id,
        experiment_name=experiment.name,
        parent_run_id=parent_run_id,
        run_name=str(parent.info.run_name),
        metric=ranked_by,
        direction=direction,
        overrides=tags.get(OVERRIDES_TAG, "").split(),
        alpha=alpha if alpha is not None else float(tags.get(SWEEP_ALPHA_TAG, ties.ALPHA)),
    )
    comparison = _compare_and_log(client, parent, sweep)
    # The parent now says how it is ranked: its comparison, description and best run are
    # this ranking's, and `compare <id>` without --metric repeats it.
    client.set_tag(parent_run_id, SWEEP_METRIC_TAG, sweep.metric)
    client.set_tag(parent_run_id, SWEEP_DIRECTION_TAG, sweep.direction)
    if out is not None:
        results.write(comparison, out)
    return report(sweep, comparison)
