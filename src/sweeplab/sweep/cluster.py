"""Ray: join the cluster a sweep runs on, before the official Ray launcher sends it jobs.

The launcher (``hydra/launcher=ray``, the hydra-ray-launcher plugin) calls ``ray.init`` with
its config and skips that when Ray is already up. sweeplab initialises Ray itself, from the
same config, so that it can: fail within seconds naming the address when the cluster cannot
be reached (Ray's own client retries for minutes), keep a loopback cluster on loopback, hand
the workers the tracking URI and MLflow's credentials through Ray's ``runtime_env`` (from this
process's environment, never from a config file), and leave out settings Ray refuses when
joining a running cluster.
"""

import contextlib
import importlib.util
import os
import socket
import sys
import threading
import time
from typing import Any

from omegaconf import DictConfig, OmegaConf

from sweeplab import LOADED_AT
from sweeplab.util.env import for_workers
from sweeplab.util.errors import UserError, install_extra, warn
from sweeplab.util.redact import redact_uri

# The official Ray launcher, and sweeplab's (conf/hydra/launcher/ray.yaml).
RAY_LAUNCHERS = (
    "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher",
    "hydra_plugins.sweeplab_ray_launcher.ray_launcher.RayLauncher",
)
# The whole join, reachability check included, stays under the 30 s a user waits at most,
# counted from when sweeplab was loaded: a busy machine's slow start-up eats into the join's
# time, down to a floor that a live cluster always needs less than.
CONNECT_SECONDS = 25.0
_GIVE_UP_AFTER_START = 28.0
_LEAST_CONNECT_SECONDS = 10.0
_PROBE_SECONDS = 5.0
_DEFAULT_GCS_PORT = 6379
# On Linux, Ray replaces a loopback node address with the machine's network address, unless
# "clusters" are off (its setting for Windows and macOS): a head started on 127.0.0.1 is then
# unreachable at the address Ray hands out, and a driver retries it forever.
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
_LOOPBACK_HOSTS = ("localhost", "::1", "[::1]")


class ClusterError(UserError):
    """The Ray cluster cannot be used; the message names its address and what to do."""


def uses_ray(launcher: DictConfig) -> bool:
    """Whether ``hydra.launcher`` sends the jobs to Ray (``hydra/launcher=ray``)."""
    return launcher.get("_target_") in RAY_LAUNCHERS


def address_of(init: dict[str, Any]) -> str | None:
    """The cluster to join: ``ray.init``'s address, else ``$RAY_ADDRESS``; None starts one."""
    address = init.get("address") or os.environ.get("RAY_ADDRESS") or None
    return None if address in (None, "local") else str(address)


def worker_env(tracking_uri: str) -> dict[str, str]:
    """The environment every job needs to log where the driver logs, as the driver has it."""
    # MLflow's client settings (credentials included) and sweeplab's allow-list.
    env = for_workers()
    # A worker without it would resolve the default store on its own machine: a fresh
    # sqlite file that many workers would migrate at once.
    env["MLFLOW_TRACKING_URI"] = tracking_uri
    return env


def init_kwargs(init: dict[str, Any], tracking_uri: str) -> dict[str, Any]:
    """``ray.init``'s arguments: the launcher's config plus the workers' environment."""
    kwargs = dict(init)
    runtime_env = dict(kwargs.get("runtime_env") or {})
    # Values the user set in the config win over what this process passes on.
    runtime_env["env_vars"] = {**worker_env(tracking_uri), **(runtime_env.get("env_vars") or {})}
    kwargs["runtime_env"] = runtime_env
    # The plugin sets a 75 MB object store when it calls ray.init itself, which Ray refuses
    # when joining a cluster; sweeplab leaves it to Ray unless the config sets it.
    if kwargs.get("object_store_memory") is None:
        kwargs.pop("object_store_memory", None)
    return kwargs


def _host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of a head address (``host:port`` or ``ray://host:port``), if it has one."""
    bare = address.removeprefix("ray://").rsplit("@", 1)[-1].rstrip("/")
    if bare == "auto":
        return None
    host, sep, port = bare.rpartition(":")
    if not sep:
        return bare, _DEFAULT_GCS_PORT
    return host.strip("[]"), int(port) if port.isdigit() else _DEFAULT_GCS_PORT


def _is_loopback(host: str) -> bool:
    return host.startswith("127.") or host in _LOOPBACK_HOSTS


def _probe(address: str) -> None:
    """Fail at once when nothing listens at the head's address."""
    target = _host_port(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=_PROBE_SECONDS):
            pass
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise ClusterError(
            f"cannot reach the Ray cluster at {redact_uri(address)} ({reason}). Start its head "
            "with `ray start --head`, or fix RAY_ADDRESS / hydra.launcher.ray.init.address"
        ) from None


def _driver_token() -> str | None:
    """The token Ray would send from this machine (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, ~/.ray)."""
    # Ray's own lookup, as its CLI uses; compiled, so mypy sees no stub for it.
    from ray._raylet import AuthenticationTokenLoader  # type: ignore[attr-defined]

    loader = AuthenticationTokenLoader.instance()
    if not loader.has_token(ignore_auth_mode=True):
        return None
    return str(loader.get_raw_token(ignore_auth_mode=True))


def _head_refuses(target: tuple[str, int], token: str | None) -> bool | None:
    """Whether the head's GCS refuses a request carrying ``token`` (None: none), or None."""
    import grpc
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    with grpc.insecure_channel(f"{target[0]}:{target[1]}") as channel:
        stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)  # type: ignore[no-untyped-call]
        try:
            stub.GetClusterId(
                gcs_service_pb2.GetClusterIdRequest(),  # type: ignore[attr-defined]
                metadata=metadata,
                timeout=_PROBE_SECONDS,
            )
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.UNAUTHENTICATED:
                return True
            return None  # not a Ray head, or not answering: ray.init's own error says so
    return False


def check_token(address: str, shown: str) -> None:
    """Before joining: raise ClusterError when this machine's token and the head's disagree.

    Asking the head once without a token tells whether it uses token authentication, in
    milliseconds; ray.init would retry for 20 s and then say "missing or incorrect", or,
    with RAY_AUTH_MODE=token and no token here, refuse before asking the cluster anything.
    """
    target = _host_port(address)
    if target is None or address.startswith("ray://"):
        return  # Ray Client speaks another protocol; ray.init reports its own errors
    try:
        token = _driver_token()
        wants_token = _head_refuses(target, None)
        refused = wants_token and token is not None and _head_refuses(target, token)
    except ImportError:  # Ray moved its internals: ray.init's own error stands
        return
    except Exception as e:  # Ray's loader: a RAY_AUTH_TOKEN_PATH it cannot read, say
        problem = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ClusterError(f"cannot read this machine's Ray token: {problem}") from None
    asked = os.environ.get("RAY_AUTH_MODE") == "token"
    copy = "copy the head's ~/.ray/auth_token to ~/.ray/auth_token here"
    if wants_token and token is None:
        raise ClusterError(
            f"the Ray cluster at {shown} uses token authentication and this machine has no "
            f"token: {copy} (or point RAY_AUTH_TOKEN_PATH at a copy) and set RAY_AUTH_MODE=token"
        )
    if wants_token and refused:
        raise ClusterError(
            f"the Ray cluster at {shown} refuses this machine's token: {copy} again "
            "(a head started after `ray get-auth-token --generate` has a new one)"
        )
    if wants_token and not asked:
        raise ClusterError(
            f"the Ray cluster at {shown} uses token authentication: set RAY_AUTH_MODE=token "
            "(this machine has the token, and Ray sends it only then)"
        )
    if wants_token is False and asked and token is None:
        raise ClusterError(
            f"RAY_AUTH_MODE=token, but this machine has no token and the Ray cluster at {shown} "
            "does not use token authentication: start its head with a token (README, "
            "'Scaling out') and copy it here, or unset RAY_AUTH_MODE"
        )
    if wants_token is False:
        warn(
            f"the Ray cluster at {shown} does not use token authentication: anyone who can "
            "reach its port can run code on it (README, 'Scaling out', starts it with a token)"
        )


def _explain(address: str, error: BaseException) -> str:
    """One line on why joining failed, with the fix for the traps we know."""
    chain = []
    while error is not None:
        chain.append(f"{type(error).__name__}: {error}")
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    text = " ".join(chain)
    if "AuthToken" in text or "Authentication" in text:
        # check_token() catches the known cases first; this is what is left of Ray's text.
        line = next(
            (ln.strip() for ln in text.splitlines() if "Authentication" in ln or "AuthToken" in ln),
            "",
        )
        return f"cannot join the Ray cluster at {address}: Ray's token authentication: {line}"
    first = chain[0].splitlines()[0] if chain else "unknown error"
    return f"cannot join the Ray cluster at {address}: {first}"


def _give_up(message: str) -> None:
    # Runs on a timer thread while ray.init() is stuck in Ray's C++ client, which no
    # exception can interrupt. Nothing of the sweep exists yet, so leaving is safe.
    print(f"sweeplab: error: {message}", file=sys.stderr, flush=True)
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    os._exit(2)


def connect(launcher: DictConfig, tracking_uri: str) -> None:
    """Start or join the Ray cluster the launcher config names, or raise ClusterError."""
    needed = ("ray", "hydra_plugins.hydra_ray_launcher")
    if any(importlib.util.find_spec(module) is None for module in needed):
        raise ClusterError(
            f"hydra/launcher=ray needs Ray and Hydra's Ray launcher: {install_extra('ray')}"
        )
    init = OmegaConf.to_container(launcher.ray.init, resolve=True)
    assert isinstance(init, dict)
    kwargs = init_kwargs({str(k): v for k, v in init.items()}, tracking_uri)
    address = address_of(kwargs)
    target = _host_port(address) if address else None
    if address is None or (target is not None and _is_loopback(target[0])):
        # Read when Ray is imported, by this driver and the processes it starts.
        os.environ.setdefault(LOOPBACK_ENV, "0")
    # Ray folds lines that look alike across workers into "[repeated 3x across cluster]":
    # every job's progress line would be hidden but the first.
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    shown = (
        redact_uri(address)
        if address
        else "this machine (no address: the cluster `ray start` began here, else a new one)"
    )
    if address:
        _probe(address)
        check_token(address, shown)
    import ray

    if ray.is_initialized():
        return
    since_start = time.monotonic() - LOADED_AT
    budget = max(_LEAST_CONNECT_SECONDS, min(CONNECT_SECONDS, _GIVE_UP_AFTER_START - since_start))
    timer = threading.Timer(
        budget,
        _give_up,
        [f"the Ray cluster at {shown} did not answer within {budget:.0f} s"],
    )
    timer.daemon = True
    timer.start()
    try:
        ray.init(**kwargs)
    except Exception as e:
        raise ClusterError(_explain(shown, e)) from None
    finally:
        timer.cancel()
