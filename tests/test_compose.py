"""A sweep's jobs composed from templates equal the jobs Hydra composes itself, node for node."""

import pytest
from hydra.errors import ConfigCompositionException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from sweeplab.sweep import compose

# As the sweep callback leaves them for every job (sweeplab.sweep.parent.start).
CALLBACK_OVERRIDES = [
    "++hydra.job.env_set.SWEEPLAB_PARENT_RUN_ID='0123'",
    "++hydra.job.env_set.SWEEPLAB_OPTUNA_TRIAL=''",
]


def master(loader: object, *overrides: str) -> DictConfig:
    """The multirun's config, as Hydra composes it before sweeping."""
    cfg = loader.load_configuration("config", [*overrides, *CALLBACK_OVERRIDES], RunMode.MULTIRUN)  # type: ignore[attr-defined]
    return cfg


def same(ours: DictConfig, hydras: DictConfig) -> None:
    # Order, values, interpolations as written, and the flags that make typos fail.
    assert OmegaConf.to_yaml(ours) == OmegaConf.to_yaml(hydras)
    assert OmegaConf.is_struct(ours) and OmegaConf.is_struct(hydras)
    task = [{k: v for k, v in c.items() if k != "hydra"} for c in (ours, hydras)]
    assert OmegaConf.to_yaml(OmegaConf.create(task[0]), resolve=True) == OmegaConf.to_yaml(
        OmegaConf.create(task[1]), resolve=True
    )


@pytest.mark.parametrize(
    ("sweep", "job"),
    [
        # Plain values of the default model, as `model.max_depth=3,6 model.n_estimators=5,9`.
        (["model.max_depth=3,6", "model.n_estimators=5,9"],
         ["model.max_depth=6", "model.n_estimators=9"]),
        # A config group picked per job, with its own values.
        (["model=ridge,random_forest", "model.alpha=1,2"], ["model=ridge", "model.alpha=2"]),
        # Another dataset and a value under it; strings, floats and lists.
        (["dataset=sklearn", "dataset.name=diabetes,iris"], ["dataset=sklearn", "dataset.name=iris"]),
        (["experiment.name=a,b", "dataset.test_size=0.2,0.3"],
         ["experiment.name=b", "dataset.test_size=0.3"]),
        # Optuna's trials: a value of Hydra's own node among the job's overrides.
        (["model=ridge", "model.alpha=1,2"],
         ["model=ridge", "model.alpha=0.25", "hydra.job.env_set.SWEEPLAB_OPTUNA_TRIAL=7"]),
        # Not plain: Hydra composes these itself, and the result is the same too.
        (["+experiment.tags.sweeplab_test=a,b"], ["+experiment.tags.sweeplab_test=b"]),
        (["model.max_depth=3,6"], ["model.max_depth=3", "~model.random_state"]),
        # A Hydra setting that names the job's number, which only a job's config has
        # (Hydra's contract suite's test_custom_sweeper_run_workdir).
        (["model.max_depth=3,6", "hydra.sweep.subdir=job_${hydra.job.num}"], ["model.max_depth=6"]),
    ],
)  # fmt: skip
def test_a_job_equals_hydras_own_composition(
    loader: object, sweep: list[str], job: list[str]
) -> None:
    cfg = master(loader, *sweep)
    ours = compose.JobComposer(loader).load_sweep_config(cfg, job)  # type: ignore[arg-type]
    same(ours, loader.load_sweep_config(cfg, job))  # type: ignore[attr-defined]
    assert list(ours.hydra.overrides.task) == [o for o in job if not o.startswith("hydra.")]


def test_jobs_of_one_template_do_not_share_nodes(loader: object) -> None:
    cfg = master(loader, "model.max_depth=3,6")
    composer = compose.JobComposer(loader)  # type: ignore[arg-type]
    first = composer.load_sweep_config(cfg, ["model.max_depth=3"])
    second = composer.load_sweep_config(cfg, ["model.max_depth=6"])
    first.model.n_estimators = 1
    assert (first.model.max_depth, second.model.max_depth) == (3, 6)
    assert second.model.n_estimators != 1
    assert second.hydra.job.override_dirname == "model.max_depth=6"


@pytest.mark.parametrize(
    "job",
    [
        ["sweep.skip_finished=maybe"],  # the schema's type
        ["sweep.no_such_key=1"],  # struct mode: a typo
        ["hydra.job.env_set.NOT_SET_BEFORE=1"],  # Hydra's node is typed too
    ],
)
def test_a_value_hydra_refuses_is_refused_the_same_way(loader: object, job: list[str]) -> None:
    cfg = master(loader, "model.max_depth=3,6")
    errors = []
    for composer in (compose.JobComposer(loader), loader):  # type: ignore[arg-type]
        with pytest.raises((ConfigCompositionException, OmegaConfBaseException)) as caught:
            composer.load_sweep_config(cfg, job)  # type: ignore[attr-defined]
        errors.append((type(caught.value), str(caught.value).splitlines()[0]))
    assert errors[0] == errors[1]


def test_a_typed_value_stays_typed(loader: object) -> None:
    cfg = master(loader, "model.max_depth=3,6")
    job = compose.JobComposer(loader).load_sweep_config(cfg, ["sweep.skip_finished=true"])  # type: ignore[arg-type]
    assert job.sweep.skip_finished is True
    with pytest.raises(OmegaConfBaseException):
        job.sweep.skip_finished = "maybe"


class CountingLoader:
    """Hydra's loader, counting the compositions asked of it."""

    def __init__(self, loader: object) -> None:
        self.loader, self.composed = loader, 0

    def load_sweep_config(self, cfg: DictConfig, overrides: list[str]) -> DictConfig:
        self.composed += 1
        return self.loader.load_sweep_config(cfg, overrides)  # type: ignore[attr-defined]


def test_hydra_composes_once_per_choice_of_config_groups(loader: object) -> None:
    cfg = master(loader, "model=ridge,random_forest", "++sweeplab_test_key=1,2,3")
    counting = CountingLoader(loader)
    composer = compose.JobComposer(counting)  # type: ignore[arg-type]
    for model in ("ridge", "random_forest"):
        for seed in (1, 2, 3):
            composer.load_sweep_config(cfg, [f"model={model}", f"dataset.split_seed={seed}"])
    assert counting.composed == 2
    # `++key` (and `+key`, `~key`) is Hydra's to compose, every time.
    composer.load_sweep_config(cfg, ["model=ridge", "++sweeplab_test_key=3"])
    assert counting.composed == 3
