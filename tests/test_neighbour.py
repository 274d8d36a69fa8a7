"""A good neighbour: importing sweeplab changes nothing process-wide."""

import json
import subprocess
import sys

import pytest

# Imports every module of sweeplab and of its Hydra plugins in a fresh interpreter, after the
# libraries whose own imports set things (MLflow; SQLAlchemy its logger's level; scikit-learn
# KMP_INIT_AT_FORK), and prints what changed.
_IMPORT_ALL = """
import importlib, json, logging, os, pkgutil, sys, warnings
import mlflow, sklearn, sqlalchemy, hydra_plugins, sweeplab

def state():
    return {
        "environ": dict(os.environ),
        "warning filters": [repr(f) for f in warnings.filters],
        "switch interval": sys.getswitchinterval(),
        "tracking uri": mlflow.get_tracking_uri(),
        "registry uri": mlflow.get_registry_uri(),
        "logger levels": {name: logging.getLogger(name).level
                          for name in ["", *logging.root.manager.loggerDict]},
        "root handlers": [repr(h) for h in logging.root.handlers],
        "recursion limit": sys.getrecursionlimit(),
    }

before = state()
names = [m.name for m in pkgutil.walk_packages(sweeplab.__path__, "sweeplab.")]
names += [m.name for m in pkgutil.walk_packages(hydra_plugins.__path__, "hydra_plugins.")
          if m.name.startswith("hydra_plugins.sweeplab_")]
for name in names:
    if not name.endswith("__main__"):  # the entry point: running it is its job
        importlib.import_module(name)
after = state()
changed = {key: [before[key], after[key]] for key in before
           if key != "logger levels" and before[key] != after[key]}
changed.update({f"logger {n!r}": [before["logger levels"].get(n), level]
                for n, level in after["logger levels"].items()
                if before["logger levels"].get(n, logging.NOTSET) != level})
print(json.dumps({"imported": len(names), "changed": changed}))
"""


@pytest.mark.process
def test_importing_every_sweeplab_module_changes_nothing_process_wide(tmp_path):
    done = subprocess.run(
        [sys.executable, "-P", "-c", _IMPORT_ALL], cwd=tmp_path, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["imported"] > 40  # every module, not a few
    assert report["changed"] == {}
