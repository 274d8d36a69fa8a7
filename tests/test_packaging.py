"""What users install: the wheel, in a fresh virtualenv, beside other Hydra apps.

An editable checkout hides what only an installed wheel shows (Hydra's plugin scan imports
every module of an installed ``hydra_plugins`` folder, for every Hydra app of the venv), so
these tests build the wheel once and install it with pip into a new venv whose only other
packages are the ones this suite runs on (a path entry to them, so nothing is downloaded).
"""

import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SWEEPLAB_PLUGINS = (
    "sweeplab_basic_launcher/basic_launcher.py",
    "sweeplab_grid_sweeper/grid_sweeper.py",
    "sweeplab_joblib_launcher/joblib_launcher.py",
    "sweeplab_optuna_sweeper/optuna_sweeper.py",
    "sweeplab_ray_launcher/ray_launcher.py",
)

# One worker runs them all (--dist loadgroup): they share its wheel and venv.
pytestmark = [pytest.mark.process, pytest.mark.slow, pytest.mark.xdist_group("packaging")]


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sweeplab's wheel, built from a copy of this checkout."""
    tmp = tmp_path_factory.mktemp("wheel")
    # Built from a copy: setuptools leaves build/ and *.egg-info/ beside the sources it builds.
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".venv", ".git", "outputs", "multirun", "build", "*.egg-info", "__pycache__", ".*cache",
    ))  # fmt: skip
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp / "dist"), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (found,) = (tmp / "dist").glob("sweeplab-*.whl")
    return found


@pytest.fixture(scope="session")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtualenv with the wheel pip-installed, and this suite's packages beside it."""
    home = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(home)], check=True)
    python = home / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    )  # fmt: skip
    # The dependencies, from the environment running these tests, after the venv's own
    # packages; a plain path entry, so that this environment's editable sweeplab (a .pth of
    # its own) stays out.
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "--quiet", str(wheel)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    return home


def _run(
    venv: Path, args: list[str], cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess:
    # Nothing of this test process's Python settings reaches the venv's (PYTHONPATH above all).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PYTEST"))}
    return subprocess.run(
        [str(venv / "bin" / "python"), "-P", *args], cwd=cwd, env=env,
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def test_wheel_ships_configs_and_plugins(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for config in (
        "config.yaml",
        "tracking/local.yaml",
        "tracking/server.yaml",
        "experiment/apple_models.yaml",
        "dataset/apple_sales.yaml",
        "model/random_forest.yaml",
        "model/gradient_boosting.yaml",
        "model/ridge.yaml",
        "hydra/launcher/basic.yaml",
        "hydra/launcher/joblib.yaml",
        "hydra/launcher/ray.yaml",
        "hydra/launcher/slurm.yaml",
        "hydra/sweeper/basic.yaml",
        "hydra/sweeper/optuna.yaml",
        "hydra/sweeper/sampler/tpe.yaml",
    ):
        assert f"sweeplab/conf/{config}" in names  # fmt: skip
    # The plugins, where Hydra's plugin scan looks: the hydra_plugins namespace.
    for plugin in SWEEPLAB_PLUGINS:
        assert f"hydra_plugins/{plugin}" in names
    assert not any(n.startswith("hydra_plugins/__init__") for n in names)


def test_installed_wheel_runs_from_any_directory_with_its_own_plugins(venv, tmp_path):
    shown = _run(venv, ["-m", "sweeplab", "--cfg", "all", "model=ridge", "hydra/launcher=ray",
                        "hydra/sweeper=optuna"], cwd=tmp_path)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "name: Apple_Models" in shown.stdout
    assert "alpha: 1.0" in shown.stdout
    assert "_target_: hydra_plugins.sweeplab_ray_launcher.ray_launcher.RayLauncher" in shown.stdout
    assert "_target_: hydra_plugins.sweeplab_optuna_sweeper.optuna_sweeper.OptunaSweeper" in (
        shown.stdout
    )
    where = _run(venv, ["-c", "import sweeplab; print(sweeplab.__file__)"], cwd=tmp_path)
    assert where.stdout.startswith(str(venv)), where.stdout
    # Hydra's own plugin scan finds sweeplab's plugins in the installed wheel.
    found = _run(venv, ["-c", textwrap.dedent("""
        import sys
        from hydra.core.plugins import Plugins
        from hydra.plugins.launcher import Launcher
        from hydra.plugins.sweeper import Sweeper
        plugins = Plugins.instance()
        print([sys.modules[c.__module__].__file__
               for kind in (Launcher, Sweeper) for c in plugins.discover(kind)])
    """)], cwd=tmp_path)  # fmt: skip
    assert found.returncode == 0, found.stderr
    for plugin in SWEEPLAB_PLUGINS:
        assert plugin in found.stdout


# An unrelated Hydra app: which launcher and sweeper ran its jobs, and what they imported.
APP = """
import sys
import hydra
from hydra.core.hydra_config import HydraConfig

@hydra.main(version_base="1.3", config_path=None, config_name=None)
def main(cfg):
    h = HydraConfig.get()
    heavy = sorted(m for m in ("sweeplab", "mlflow", "sklearn", "skops", "numpy")
                   if m in sys.modules)
    print(f"job launcher={h.launcher._target_} sweeper={h.sweeper._target_} heavy={heavy}")
    return cfg.x

if __name__ == "__main__":
    main()
"""


def test_other_hydra_apps_keep_hydras_own_launchers_and_sweepers(venv, tmp_path):
    (tmp_path / "app.py").write_text(APP)
    grid = _run(venv, ["app.py", "-m", "+x=1,2"], cwd=tmp_path)
    assert grid.returncode == 0, grid.stderr
    jobs = [line for line in grid.stdout.splitlines() if line.startswith("job ")]
    assert (
        jobs
        == [
            "job launcher=hydra._internal.core_plugins.basic_launcher.BasicLauncher "
            "sweeper=hydra._internal.core_plugins.basic_sweeper.BasicSweeper heavy=[]"
        ]
        * 2
    )
    parallel = _run(venv, ["app.py", "-m", "+x=1,2", "hydra/launcher=joblib",
                           "hydra.launcher.n_jobs=2"], cwd=tmp_path)  # fmt: skip
    assert parallel.returncode == 0, parallel.stderr
    jobs = [line for line in parallel.stdout.splitlines() if line.startswith("job ")]
    assert len(jobs) == 2
    for line in jobs:
        assert "launcher=hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher" in line
        assert "sweeplab" not in line and "mlflow" not in line and "sklearn" not in line
    # No Optuna sweeper is installed for this app: Hydra says so, sweeplab's is not reached.
    optuna = _run(venv, ["app.py", "-m", "+x=1", "hydra/sweeper=optuna"], cwd=tmp_path)
    assert optuna.returncode == 1
    assert "Could not find 'hydra/sweeper/optuna'" in optuna.stderr
    assert "sweeplab" not in optuna.stderr


# Hydra's own contract suites for its launchers and sweeper, run beside sweeplab's wheel, and
# for sweeplab's joblib launcher (tests/test_plugin_contracts.py has sweeplab's other plugins).
# Not Hydra's IntegrationTestSuite: its 11 app launches (38 of these suites' 63 s) test what
# Hydra's joblib launcher itself does; which launcher an app gets, the unrelated app shows.
SUITES = """
from pytest import mark
from hydra.test_utils.launcher_common_tests import BatchedSweeperTestSuite, LauncherTestSuite


@mark.parametrize("launcher_name, overrides", [("basic", []), ("joblib", [])])
class TestLaunchers(LauncherTestSuite):
    pass


@mark.parametrize("launcher_name, overrides", [
    ("basic", ["hydra/sweeper=basic", "hydra.sweeper.max_batch_size=2"]),
])
class TestBatchedSweeper(BatchedSweeperTestSuite):
    pass


# sweeplab's joblib launcher, from sweeplab's config folder (the others: test_plugin_contracts).
@mark.parametrize("launcher_name, overrides", [
    ("joblib", ["hydra.searchpath=[pkg://sweeplab.conf]"]),
])
class TestSweeplabJoblib(LauncherTestSuite):
    pass
"""


def test_hydras_contract_suites_pass_beside_sweeplab_and_for_its_joblib_launcher(venv, tmp_path):
    (tmp_path / "test_hydra_suites.py").write_text(SUITES)
    result = _run(
        venv, ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
               "test_hydra_suites.py"], cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    # 19 of Hydra 1.3.2's own, 9 for sweeplab's joblib launcher; none skipped or failed.
    assert "28 passed" in result.stdout and "skipped" not in result.stdout, result.stdout[-2000:]
