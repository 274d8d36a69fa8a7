"""Hydra's own contract suites, run against sweeplab's stand-ins for Hydra's plugins.

sweeplab's ``basic`` and ``joblib`` launchers and ``basic`` sweeper are options in sweeplab's
own config folder (pkg://sweeplab.conf), so a Hydra app reaches them only with that folder on
its search path, as these tests put it. Each must keep the contract of the plugin it stands in
for (tests/test_packaging.py runs the same suites for Hydra's own plugins beside sweeplab).
"""

import pytest
from hydra.test_utils.launcher_common_tests import (
    BatchedSweeperTestSuite,
    IntegrationTestSuite,
    LauncherTestSuite,
)

SWEEPLAB = "hydra.searchpath=[pkg://sweeplab.conf]"


@pytest.fixture(autouse=True)
def _version_base_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    # The suites' apps name no version_base and expect Hydra's defaults for that (jobs change
    # into their folder); composing sweeplab's configs earlier in this process set 1.3, which
    # Hydra keeps in a singleton its own hydra_restore_singletons fixture does not reset.
    from hydra import version

    monkeypatch.setattr(version.VersionBase.instance(), "version_base", version._UNSPECIFIED_)


# Hydra 1.3 warns that it checks each of sweeplab's options against its own of the same name:
# expected, as sweeplab's own entry points say (sweeplab.util.quiet).
pytestmark = pytest.mark.filterwarnings(
    r"ignore:\s*'hydra/(launcher|sweeper)/(basic|joblib)' is validated:UserWarning"
)


# sweeplab's joblib launcher is run against LauncherTestSuite in tests/test_packaging.py's
# venv: this suite's pytest setup (tests/ on sys.path) breaks the suite's joblib jobs for
# Hydra's own joblib launcher too ("A task has failed to un-serialize").
@pytest.mark.parametrize(("launcher_name", "overrides"), [("basic", [SWEEPLAB])])
class TestSweeplabBasicLauncher(LauncherTestSuite):
    """sweeplab's basic launcher (Hydra's, copying less)."""


@pytest.mark.parametrize(
    ("launcher_name", "overrides"),
    [("basic", ["hydra/sweeper=basic", "hydra.sweeper.max_batch_size=2", SWEEPLAB])],
)
class TestSweeplabGridSweeper(BatchedSweeperTestSuite):
    """sweeplab's grid sweeper (Hydra's basic sweeper, each job composed once)."""


@pytest.mark.process
@pytest.mark.parametrize(
    ("task_launcher_cfg", "extra_flags"), [({}, ["-m", "hydra/launcher=basic", SWEEPLAB])]
)
class TestSweeplabBasicLauncherIntegration(IntegrationTestSuite):
    """sweeplab's basic launcher and grid sweeper in a whole Hydra app's process."""

    @pytest.fixture(autouse=True)
    def _expected_warnings_unshown(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # The app prints Hydra's warning above on stderr, which the suite refuses. Its text
        # starts with a line break, which PYTHONWARNINGS cannot match: UserWarnings go.
        monkeypatch.setenv("PYTHONWARNINGS", "ignore::UserWarning")
