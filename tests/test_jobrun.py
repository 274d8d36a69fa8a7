"""A sweep job run by sweeplab.sweep.jobrun behaves as under Hydra's own run_job, copies aside."""

import os
from pathlib import Path
from typing import Any

import pytest
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from hydra.core.utils import run_job as hydras_run_job
from hydra.types import HydraContext
from omegaconf import DictConfig, OmegaConf, open_dict
from test_compose import master

from sweeplab.sweep import jobrun


class Seen:
    """A task function and Hydra callbacks that write down what the job saw."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.events: list[tuple[str, str]] = []

    def __call__(self, cfg: DictConfig) -> float:
        hydra = HydraConfig.get()
        self.events.append(("task", OmegaConf.to_yaml(cfg, resolve=True)))
        self.events.append(("flags", repr((OmegaConf.is_struct(cfg), OmegaConf.get_type(cfg)))))
        self.events.append(("hydra", OmegaConf.to_yaml(hydra)))
        self.events.append(("where", f"{hydra.runtime.output_dir} {os.getcwd()}"))
        self.events.append(("env", os.environ.get("SWEEPLAB_PARENT_RUN_ID", "<unset>")))
        if self.fail:
            raise ValueError("the job failed")
        return float(cfg.dataset.test_size)

    def on_job_start(self, config: DictConfig, task_function: Any) -> None:
        self.events.append(("start", OmegaConf.to_yaml(config)))

    def on_job_end(self, config: DictConfig, job_return: JobReturn) -> None:
        self.events.append(("end", OmegaConf.to_yaml(config) + str(job_return.status)))


def run(runner: Any, loader: Any, cfg: DictConfig, job: list[str], seen: Seen) -> dict[str, Any]:
    """Compose job 3 of ``cfg`` afresh, run it with ``runner``; what it returned and wrote."""
    config = loader.load_sweep_config(cfg, job)
    with open_dict(config):
        config.hydra.job.id = config.hydra.job.num = 3
    before = HydraConfig.instance().cfg
    ret = runner(
        task_function=seen,
        config=config,
        job_dir_key="hydra.sweep.dir",
        job_subdir_key="hydra.sweep.subdir",
        hydra_context=HydraContext(config_loader=loader, callbacks=seen),  # type: ignore[arg-type]
    )
    assert HydraConfig.instance().cfg is before  # put back as it was
    folder = Path(ret.hydra_cfg.hydra.runtime.output_dir, ".hydra")
    files = {p.name: p.read_text() for p in sorted(folder.iterdir())}
    for path in folder.iterdir():
        path.unlink()
    value = ret._return_value  # the property raises a failed job's error
    return {
        "cfg": OmegaConf.to_yaml(ret.cfg),
        "flags": (OmegaConf.is_struct(ret.cfg), OmegaConf.is_readonly(ret.cfg), "hydra" in ret.cfg),
        "hydra_cfg": OmegaConf.to_yaml(ret.hydra_cfg),
        "overrides": ret.overrides,
        "working_dir": ret.working_dir,
        "status": ret.status,
        "value": repr(value) if isinstance(value, Exception) else value,
        "task_name": ret.task_name,
        "files": files,
        "seen": seen.events,
    }


@pytest.mark.parametrize(
    ("sweep", "job"),
    [
        (["model.max_depth=3,6"], ["model.max_depth=6"]),
        (["model=ridge,random_forest", "dataset.test_size=0.2,0.3"],
         ["model=ridge", "dataset.test_size=0.3"]),
    ],
)  # fmt: skip
@pytest.mark.parametrize("fail", [False, True], ids=["finishes", "fails"])
def test_a_job_returns_writes_and_sees_what_hydras_run_job_gives_it(
    loader: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sweep: list[str],
    job: list[str], fail: bool,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    cfg = master(loader, *sweep, f"hydra.sweep.dir={tmp_path}/sweep")
    HydraConfig.instance().set_config(cfg)  # as the launcher leaves it
    hydras = run(hydras_run_job, loader, cfg, job, Seen(fail))
    ours = run(jobrun.run_job, loader, cfg, job, Seen(fail))
    assert ours == hydras
    assert ours["status"] == (JobStatus.FAILED if fail else JobStatus.COMPLETED)
    assert set(ours["files"]) == {"config.yaml", "hydra.yaml", "overrides.yaml"}
    assert f"{tmp_path}/sweep/3 {tmp_path}" in dict(ours["seen"])["where"]
    assert dict(ours["seen"])["env"] == "0123"  # hydra.job.env_set, during the job only
    assert "SWEEPLAB_PARENT_RUN_ID" not in os.environ


def test_the_job_leaves_the_composed_config_whole(loader: Any, tmp_path: Path) -> None:
    # The config's own hydra node is set aside while copying the rest, then put back.
    cfg = master(loader, "model.max_depth=3,6", f"hydra.sweep.dir={tmp_path}/sweep")
    HydraConfig.instance().set_config(cfg)
    config = loader.load_sweep_config(cfg, ["model.max_depth=6"])
    with open_dict(config):
        config.hydra.job.id = config.hydra.job.num = 0
    keys = list(config)
    ret = jobrun.run_job(Seen(), config, "hydra.sweep.dir", "hydra.sweep.subdir",
                         HydraContext(config_loader=loader, callbacks=Seen()))  # type: ignore[arg-type]  # fmt: skip
    assert list(config) == keys and keys[0] == "hydra"
    assert config.hydra.runtime.output_dir == f"{tmp_path}/sweep/0"
    assert ret.cfg.model.max_depth == 6 and ret.cfg is not config
