"""Every tag name sweeplab sets or reads on MLflow's runs, models and experiments, once."""

# ---------------------------------------------------------------- MLflow's own
# A nested run's parent (mlflow.utils.mlflow_tags.MLFLOW_PARENT_RUN_ID).
MLFLOW_PARENT_RUN_ID = "mlflow.parentRunId"
# A run's description in the UI.
NOTE_TAG = "mlflow.note.content"
# The experiment's kind: the UI's model-training view.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"

# ---------------------------------------------------------------- every run
# Where and with what it ran.
VERSION_TAG = "sweeplab.version"
GIT_COMMIT_TAG = "sweeplab.git_commit"
GIT_DIRTY_TAG = "sweeplab.git_dirty"
# What the run is: the fingerprint sweep.skip_finished reuses by, its task, estimator, data.
TASK_TAG = "sweeplab.task"
ESTIMATOR_TAG = "sweeplab.estimator"
DATA_DIGEST_TAG = "sweeplab.data_digest"
FINGERPRINT_TAG = "sweeplab.config_fingerprint"
# Why a run that raised stopped (MLflow keeps tag values up to 8,000 characters).
ERROR_TAG = "sweeplab.error"
# Metrics that were NaN or infinite, so not logged.
NONFINITE_TAG = "sweeplab.nonfinite_metrics"

# ---------------------------------------------------------------- sweeps
# The parent carries the sweep's settings; children their job.
SWEEP_TAG = "sweeplab.sweep"  # on the parent: "true"
JOB_TAG = "sweeplab.sweep.job"  # on a child: the job's number in the multirun
OVERRIDES_TAG = "sweeplab.sweep.overrides"
SWEEP_METRIC_TAG = "sweeplab.sweep.metric"
SWEEP_DIRECTION_TAG = "sweeplab.sweep.direction"
# The sweep's sweep.alpha: cross-validated jobs with a paired p-value against the best at or
# above it are tied with the best.
SWEEP_ALPHA_TAG = "sweeplab.sweep.alpha"
SUMMARY_TAG = "sweeplab.sweep.summary"
BEST_RUN_TAG = "best_run_id"
# An Optuna sweep: on each trial's child run, and on the parent.
TRIAL_TAG = "sweeplab.optuna.trial"
STUDY_TAG = "sweeplab.optuna.study"
STORAGE_TAG = "sweeplab.optuna.storage"
SAMPLER_TAG = "sweeplab.optuna.sampler"
# The Optuna sweep's pruner class, when it prunes.
PRUNER_TAG = "sweeplab.optuna.pruner"
# On a trial's run that its pruner stopped between folds: "after 2 of 5 folds". The run ends
# KILLED (MLflow has no PRUNED status) with the folds it finished; comparisons show PRUNED.
PRUNED_TAG = "sweeplab.pruned"

# ---------------------------------------------------------------- registered models
# On each version sweeplab registers: where it came from and how it scored.
SOURCE_RUN_TAG = "sweeplab.source_run_id"
PARENT_RUN_TAG = "sweeplab.parent_run_id"
VERSION_METRIC_TAG = "sweeplab.metric"
VERSION_VALUE_TAG = "sweeplab.metric_value"
VERSION_DIRECTION_TAG = "sweeplab.direction"
# On the run a registration came from (a sweep's parent, or the single run): ``NAME vN``.
REGISTERED_TAG = "sweeplab.registered_version"
# Marks the registered models sweeplab uses as locks; `sweeplab-tools models` hides them.
LOCK_TAG = "sweeplab.lock"
