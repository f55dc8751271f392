"""Connecting to Ray: a private local instance by default, or an existing cluster by address.

Ray 2.60 resolves 127.0.0.1 to the machine's network address and binds its gRPC servers on all
interfaces unless `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0` is set; that switch is read into
`ray._private.ray_constants` once, at import. So `connect(loopback=True)` sets both for the duration
of the connection, and every Ray process started under it listens on 127.0.0.1 only.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import ray
from ray._private import ray_constants

from tooncrafter_model.errors import TransientError, UserError

_CLUSTER_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


class RayAddressError(UserError):
    """A Ray address that cannot be used as asked (off this machine in loopback mode, or another cluster
    than the one this process is connected to)."""


class RayUnavailable(TransientError):
    """The Ray cluster at an address did not answer; a later try may find it."""


@dataclass(frozen=True)
class RayCluster:
    """What `connect` joined: its address, how, its alive nodes and their total resources."""

    address: str
    started_local: bool  # this connect() started a private local instance (and stops it on exit)
    reused: bool  # the process was already connected; connect() will not disconnect it
    nodes: tuple[str, ...]  # ids of the alive nodes
    resources: dict[str, float]


def _target(address: str | None) -> str | None:
    """The cluster `address` names, else `$RAY_ADDRESS`'s; None for a local Ray."""
    target = address or os.environ.get("RAY_ADDRESS") or None
    return None if target in ("local", "") else target


def _host(address: str) -> str:
    rest = address.split("://", 1)[-1]
    host = rest.rsplit(":", 1)[0] if rest.count(":") == 1 or rest.startswith("[") else rest
    return host.strip("[]")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: a machine on the network


def on_this_machine(address: str | None = None) -> bool:
    """Whether `address` (or `$RAY_ADDRESS`) is a local Ray or one on 127.0.0.0/8: then the farm stays on
    loopback (`connect(loopback=True)`); an address off this machine means a networked farm."""
    target = _target(address)
    return target is None or _is_loopback(_host(target))


@contextmanager
def _loopback_only(enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    saved_env, saved_flag = os.environ.get(_CLUSTER_SWITCH), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[_CLUSTER_SWITCH] = "0"  # inherited by every Ray process started from here
    ray_constants.ENABLE_RAY_CLUSTER = False  # already read at import in this process
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_flag
        if saved_env is None:
            os.environ.pop(_CLUSTER_SWITCH, None)
        else:
            os.environ[_CLUSTER_SWITCH] = saved_env


def _describe(started_local: bool, reused: bool) -> RayCluster:
    ctx = ray.get_runtime_context()
    return RayCluster(
        address=ctx.gcs_address,
        started_local=started_local,
        reused=reused,
        nodes=tuple(n["NodeID"] for n in ray.nodes() if n.get("Alive")),
        resources={k: float(v) for k, v in ray.cluster_resources().items()},
    )


@contextmanager
def connect(
    address: str | None = None,
    *,
    num_cpus: float | None = None,
    num_gpus: float | None = None,
    resources: Mapping[str, float] | None = None,
    loopback: bool = True,
    temp_dir: str | None = None,
) -> Iterator[RayCluster]:
    """Start a local Ray (default) or join the cluster at `address` / `$RAY_ADDRESS`; shut down on exit.

    `num_cpus`, `num_gpus` (fake GPUs on a machine without any: bookkeeping only), `resources` and
    `temp_dir` describe a local instance and are refused for an existing cluster. With `loopback`
    (default) nothing listens beyond 127.0.0.0/8 and a non-loopback address is refused; pass
    `loopback=False` to join a networked farm. A process already connected (to `address`, if given) is
    reused as it is and stays connected on exit.
    """
    target = _target(address)
    local_only = {"num_cpus": num_cpus, "num_gpus": num_gpus, "resources": resources, "temp_dir": temp_dir}
    kwargs: dict[str, Any]
    if target is None:
        kwargs = {"address": "local", "include_dashboard": False, "num_cpus": num_cpus, "num_gpus": num_gpus}
        kwargs["resources"] = dict(resources) if resources else None
        if temp_dir:
            kwargs["_temp_dir"] = temp_dir
    else:
        given = [k for k, v in local_only.items() if v is not None]
        if given:
            raise RayAddressError(
                f"connect({target!r}): {', '.join(given)} only apply to a local Ray; the cluster has its own"
            )
        if loopback and not _is_loopback(_host(target)):
            raise RayAddressError(
                f"connect({target!r}): not a loopback address; pass loopback=False to join a networked cluster"
            )
        kwargs = {"address": target}
    if ray.is_initialized():
        current = ray.get_runtime_context().gcs_address
        if target is not None and target.split("://")[-1] != current:
            raise RayAddressError(f"connect({target!r}): this process is already connected to Ray at {current}")
        yield _describe(started_local=False, reused=True)
        return
    with _loopback_only(loopback):
        try:
            ray.init(**kwargs)
        except ConnectionError as exc:  # no Ray answers there (yet): a head node restarting, a network cut
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "no answer"
            raise RayUnavailable(f"Ray cluster at {target}: {reason}") from exc
        try:
            yield _describe(started_local=target is None, reused=False)
        finally:
            ray.shutdown()
