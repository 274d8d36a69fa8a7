"""The private Hydra and OmegaConf names sweeplab uses (sweeplab.util.hydra_internals) still
have the shape it relies on, and the Hydra functions it follows step by step are unchanged.

When hydra-core (or hydra-joblib-launcher) is upgraded and one of these fails, review the
module the message names against Hydra's new code, then update the fingerprint here.
"""

import hashlib
import importlib
import inspect

import pytest
from omegaconf import OmegaConf

from sweeplab.util import hydra_internals

# sha256 of each mirrored function's source (first 16 hex digits), hydra-core 1.3.8 and
# hydra-joblib-launcher 1.2.0.
FINGERPRINTS = {
    "hydra.core.utils.run_job": "398b33286c017043",
    "hydra._internal.core_plugins.basic_launcher.BasicLauncher.launch": "82ec31096d6ffec6",
    "hydra._internal.core_plugins.basic_sweeper.BasicSweeper.sweep": "3442021389cf83ee",
    "hydra._internal.config_loader_impl.ConfigLoaderImpl._load_configuration_impl":
        "f611c97e466f94db",
    "hydra_plugins.hydra_joblib_launcher._core.launch": "1078c4c3ff10ccd7",
    "hydra_plugins.hydra_joblib_launcher._core.execute_job": "143d66c6d87f4b33",
}  # fmt: skip


def _resolve(qualified: str) -> object:
    """The object a dotted name names: the longest importable module, then attributes."""
    parts = qualified.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            found = getattr(found, attribute)
        return found
    raise ImportError(qualified)


def test_every_mirrored_function_has_a_fingerprint_and_a_follower():
    assert set(FINGERPRINTS) == set(hydra_internals.MIRRORED)
    for follower in hydra_internals.MIRRORED.values():
        assert callable(_resolve(follower)), follower


@pytest.mark.parametrize("qualified", sorted(FINGERPRINTS))
def test_the_hydra_functions_sweeplab_follows_are_unchanged(qualified):
    source = inspect.getsource(_resolve(qualified))  # type: ignore[arg-type]
    got = hashlib.sha256(source.encode()).hexdigest()[:16]
    assert got == FINGERPRINTS[qualified], (
        f"{qualified} changed in this Hydra: review {hydra_internals.MIRRORED[qualified]} "
        f"against it, then set its fingerprint here to {got!r}"
    )


@pytest.mark.parametrize(
    ("qualified", "parameters"),
    [
        ("hydra._internal.utils.get_args_parser", []),
        ("hydra._internal.utils.create_automatic_config_search_path",
         ["calling_file", "calling_module", "config_path"]),
        ("hydra._internal.hydra.Hydra.create_main_hydra2", ["task_name", "config_search_path"]),
        ("hydra._internal.config_loader_impl.ConfigLoaderImpl._apply_overrides_to_config",
         ["overrides", "cfg"]),
        ("hydra._internal.config_loader_impl.get_overrides_dirname",
         ["overrides", "exclude_keys", "item_sep", "kv_sep"]),
        ("hydra._internal.core_plugins.basic_sweeper.BasicSweeper.split_arguments",
         ["overrides", "max_batch_size"]),
        ("hydra._internal.deprecation_warning.deprecation_warning", ["message", "stacklevel"]),
        ("hydra.core.utils._save_config", ["cfg", "filename", "output_dir"]),
        ("hydra.core.utils._flush_loggers", []),
    ],
)  # fmt: skip
def test_the_private_functions_sweeplab_calls_take_what_it_passes(qualified, parameters):
    found = _resolve(qualified)
    assert list(inspect.signature(found).parameters) == parameters  # type: ignore[arg-type]


def test_the_private_attributes_sweeplab_reads_are_there():
    from hydra.core.plugins import Plugins
    from hydra.core.singleton import Singleton

    assert isinstance(Singleton._instances, dict)
    Plugins.instance()
    assert hydra_internals.known_instance(Plugins) is Plugins.instance()
    # The plugin modules subclass these when Hydra's plugin scan imports them.
    from hydra._internal.core_plugins.basic_launcher import BasicLauncher, log
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    assert callable(BasicLauncher.launch) and callable(BasicSweeper.sweep) and log.name


def test_a_config_seen_without_a_key_copies_the_rest_and_keeps_it_whole():
    import copy

    config = OmegaConf.create({"hydra": {"big": list(range(3))}, "model": {"alpha": 1.0}})
    with hydra_internals.hidden_keys(config, ["hydra"]) as rest:
        copied = copy.deepcopy(rest)
    assert OmegaConf.to_container(copied) == {"model": {"alpha": 1.0}}
    assert OmegaConf.to_container(config) == {
        "hydra": {"big": [0, 1, 2]},
        "model": {"alpha": 1.0},
    }


def test_the_search_path_is_the_one_hydra_main_builds():
    path = hydra_internals.search_path("pkg://sweeplab.conf")
    providers = [(element.provider, element.path) for element in path.get_path()]
    assert ("main", "pkg://sweeplab.conf") in providers
    assert providers[0] == ("hydra", "pkg://hydra.conf")
