"""A real two-node Ray cluster on this machine (`ray start --head` + `ray start --address`): the pool
joins it by address, spreads pairs over both nodes, and writes into one shared output folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cluster.config import PoolConfig, WorkerConfig
from cluster.connect import connect
from cluster.jobs import PairJob, PairResult
from cluster.pool import ActorPool

MakeJob = Callable[..., PairJob]
Published = Callable[[list[PairResult], Path], None]
Listeners = Callable[[str], list[tuple[str, int, str, bool]]]

pytestmark = pytest.mark.slow


# `two_node_ray` is a conftest.TwoNodeRay (address, temp_dir); conftest modules cannot be imported here.


def test_pairs_run_on_both_nodes(
    two_node_ray: Any,
    make_job: MakeJob,
    assert_published: Published,
    ray_listeners: Listeners,
    tmp_path: Path,
) -> None:
    address, temp_dir = two_node_ray.address, two_node_ray.temp_dir
    # One whole CPU per actor and one CPU per node: Ray must place one actor on each node.
    worker = WorkerConfig(backend="simulated-gpu", backend_settings={"seconds": 0.2}, num_cpus=1)
    jobs = [make_job(f"n{i:02d}", seed=i) for i in range(8)]
    with connect(address) as cluster:
        assert not cluster.started_local and not cluster.reused
        assert len(cluster.nodes) == 2
        assert cluster.resources["node_a"] == 1.0 and cluster.resources["node_b"] == 1.0
        with ActorPool(PoolConfig(actors=2), worker) as pool:
            results = list(pool.run(jobs))
            stats = pool.stats()
            sockets = ray_listeners(temp_dir)
    assert all(r.ok for r in results), [r.error for r in results]
    assert {a.node for r in results for a in r.attempts} == set(cluster.nodes)
    assert set(stats.pairs_per_node()) == set(cluster.nodes) and min(stats.pairs_per_node().values()) >= 1
    assert_published(results, tmp_path / "renders")  # both nodes wrote into the one shared folder
    assert [name for _, _, name, _ in sockets].count("raylet") >= 2  # saw both nodes' servers
    assert [s for s in sockets if not s[3]] == []


def test_connect_follows_ray_address(two_node_ray: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    address = two_node_ray.address
    monkeypatch.setenv("RAY_ADDRESS", address)
    with connect() as cluster:
        assert cluster.address == address and not cluster.started_local and len(cluster.nodes) == 2
