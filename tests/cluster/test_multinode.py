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


@pytest.fixture
def postgres_url() -> Any:
    """A throwaway PostgreSQL database on the local server, dropped afterwards."""
    import uuid

    from sqlalchemy import create_engine, text

    name = f"toonfarm_mn_{uuid.uuid4().hex[:10]}"
    admin = create_engine("postgresql+psycopg://root@127.0.0.1:5432/test", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg://root@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.postgres
@pytest.mark.usefixtures("prefect_harness")
def test_batch_across_both_nodes_into_postgres(two_node_ray: Any, postgres_url: str, tmp_path: Path) -> None:
    """The whole batch flow on the two-node cluster: outputs in one shared folder, the shot DB on
    PostgreSQL, and pairs rendered on both nodes."""
    import yaml

    import shot_db
    from flows.render_batch import render_batch
    from shot_db.models import Render
    from shot_db import ShotDB
    from tasks.settings import Settings
    from tasks.synthetic import animate, make_character, write_video

    shots = []
    for i, code in enumerate(("sh0010", "sh0020")):
        anim = animate([2] * 5, width=128, height=64, character=make_character(20 + i))
        write_video(anim.frames, tmp_path / "in" / f"{code}.mkv", fps=24, lossless=True)
        shots.append({"code": code, "source": f"{code}.mkv"})
    shotlist = tmp_path / "in" / "shots.yaml"
    shotlist.write_text(yaml.safe_dump({"defaults": {"show": "mn", "fps": 24}, "shots": shots}))
    settings = Settings(output_root=tmp_path / "shared", db=postgres_url, ray_address=two_node_ray.address,
                        actors=2, actor_cpus=1)
    batch = render_batch(str(shotlist), settings)
    assert batch.ok and batch.summary == "rendered 8 pairs, reused 0, failed 0", batch.errors
    db = ShotDB.open(postgres_url)
    with db.transaction() as s:
        nodes = {r.node for r in s.query(Render).all()}
        versions = [shot_db.shot_history(session=s, show="mn", sequence="main", code=c) for c in ("sh0010", "sh0020")]
    db.close()
    assert len(nodes) == 2  # one actor per node: each node rendered pairs
    assert [len(v) for v in versions] == [1, 1]
    assert all(Path(o.path).is_relative_to(tmp_path / "shared") for v in versions for o in v[0].outputs)
