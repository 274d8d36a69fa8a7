"""An installed wheel, not just the source tree, carries the default configs."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_wheel_ships_configs_and_runs_from_any_directory(tmp_path):
    # Built from a copy: setuptools leaves build/ and *.egg-info/ beside the sources it builds.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".venv", ".git", "outputs", "multirun", "build", "*.egg-info", "__pycache__", ".*cache",
    ))  # fmt: skip
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp_path / "dist"), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("sweeplab-*.whl")
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
        "hydra/launcher/ray.yaml",
        "hydra/launcher/slurm.yaml",
    ):
        assert f"sweeplab/conf/{config}" in names  # fmt: skip
    # The sweepers, where Hydra's plugin scan looks: the hydra_plugins namespace.
    assert "hydra_plugins/sweeplab_optuna_sweeper/optuna_sweeper.py" in names
    assert "hydra_plugins/sweeplab_grid_sweeper/grid_sweeper.py" in names
    assert "hydra_plugins/sweeplab_joblib_launcher/joblib_launcher.py" in names
    assert "hydra_plugins/sweeplab_ray_launcher/ray_launcher.py" in names
    assert not any(n.startswith("hydra_plugins/__init__") for n in names)

    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # The unpacked wheel comes first on the path, ahead of the editable install.
    env = {**os.environ, "PYTHONPATH": str(site)}
    shown = subprocess.run(
        [sys.executable, "-c",
         "import sweeplab, sys; print(sweeplab.__file__); "
         "sys.argv = ['sweeplab', '--cfg', 'all', 'model=ridge', 'hydra/launcher=ray', "
         "'hydra/sweeper=optuna']; "
         "from sweeplab.run import main; main()"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(str(site))
    assert "name: Apple_Models" in shown.stdout
    assert "alpha: 1.0" in shown.stdout
    assert "_target_: hydra_plugins.sweeplab_ray_launcher.ray_launcher.RayLauncher" in shown.stdout
    assert "_target_: hydra_plugins.sweeplab_optuna_sweeper.optuna_sweeper.OptunaSweeper" in (
        shown.stdout
    )
    # Hydra's own plugin scan finds the sweeper in the wheel, without sweeplab's help.
    found = subprocess.run(
        [sys.executable, "-c",
         "from hydra.core.plugins import Plugins; from hydra.plugins.sweeper import Sweeper; "
         "import sys; print([sys.modules[c.__module__].__file__ "
         "for c in Plugins.instance().discover(Sweeper)])"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert found.returncode == 0, found.stderr
    for plugin in (
        "sweeplab_optuna_sweeper/optuna_sweeper.py",
        "sweeplab_grid_sweeper/grid_sweeper.py",
    ):
        assert str(site / "hydra_plugins" / plugin) in found.stdout
