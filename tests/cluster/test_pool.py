"""The actor pool on one local Ray: every pair once, priorities, backpressure, idempotence, and the
errors a wrangler sees for a pool that cannot start."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import ray

from cluster.config import PoolConfig, WorkerConfig
from cluster.connect import RayCluster, connect, on_this_machine
from cluster.jobs import PairJob, PairResult
from cluster.pool import ActorPool, PoolStartError
from tooncrafter_model.frames import pixel_hash, read_frame

MakeJob = Callable[..., PairJob]
Published = Callable[[list[PairResult], Path], None]
CROSSFADE = WorkerConfig(backend="crossfade", num_cpus=0.5, reason="zero-cost backend: orchestration only")


def test_local_ray_listens_on_loopback_only(
    ray_local: tuple[RayCluster, str], ray_listeners: Callable[[str], list[tuple[str, int, str, bool]]]
) -> None:
    cluster, temp_dir = ray_local
    assert cluster.started_local and not cluster.reused
    assert [n["NodeManagerAddress"] for n in ray.nodes()] == ["127.0.0.1"]
    with ActorPool(PoolConfig(actors=1), CROSSFADE):  # an actor's own gRPC server listens too
        sockets = ray_listeners(temp_dir)
    names = {name for _, _, name, _ in sockets}
    assert {"gcs_server", "raylet"} <= names, sockets  # the check saw Ray's servers, not nothing
    assert any(name.startswith("ray::") for name in names), sockets
    assert [s for s in sockets if not s[3]] == []


def test_connect_reuses_a_live_connection_and_refuses_bad_targets(ray_local: tuple[RayCluster, str]) -> None:
    cluster, _ = ray_local
    with connect() as again:
        assert again.reused and again.address == cluster.address
    assert ray.is_initialized()
    with pytest.raises(ValueError, match="not a loopback address; pass loopback=False"):
        with connect("10.1.2.3:6379"):
            pass
    with pytest.raises(ValueError, match="num_cpus, num_gpus only apply to a local Ray"):
        with connect("127.0.0.1:6379", num_cpus=2, num_gpus=1):
            pass
    with pytest.raises(ValueError, match="already connected to Ray at"):
        with connect("127.0.0.1:1"):
            pass


def test_pool_renders_every_pair_once(
    ray_local: tuple[RayCluster, str], make_job: MakeJob, assert_published: Published, tmp_path: Path
) -> None:
    jobs = [make_job(f"k{i:02d}", seed=i) for i in range(12)]
    with ActorPool(PoolConfig(actors=2), CROSSFADE) as pool:
        results = list(pool.run(jobs))
        stats = pool.stats()
    assert sorted(r.job.render_key for r in results) == [j.render_key for j in jobs]
    assert all(r.ok and len(r.attempts) == 1 for r in results), [r.error for r in results]
    for r in results:
        assert [pixel_hash(read_frame(p)) for p in r.frame_paths] == list(r.frame_hashes)
    assert_published(results, tmp_path / "renders")
    assert stats.pairs_ok == 12 and stats.pairs_failed == 0
    assert sorted(stats.pairs_per_worker().values()) != [0, 12]  # both actors took work
    assert set(stats.model_loads().values()) == {1}  # loaded once per actor, not per pair
    assert set(stats.pairs_per_node()) == {ray.get_runtime_context().get_node_id()}
    assert all(w.busy_s > 0 and w.alive and w.pid > 0 for w in stats.workers)
    assert {r.attempts[0].worker for r in results} == set(stats.pairs_per_worker())


def test_priority_puts_a_rush_shot_first(ray_local: tuple[RayCluster, str], make_job: MakeJob) -> None:
    jobs = [make_job(f"n{i}", shot="show/sq010/normal") for i in range(4)]
    jobs += [make_job(f"r{i}", shot="show/sq020/rush", priority=10) for i in range(3)]
    jobs += [make_job(f"m{i}", shot="show/sq030/soon", priority=1) for i in range(2)]
    with ActorPool(PoolConfig(actors=1, max_in_flight_per_actor=1), CROSSFADE) as pool:
        results = list(pool.run(jobs))
    started = [r.job.render_key for r in sorted(results, key=lambda r: r.attempts[0].started_at)]
    assert started == ["r0", "r1", "r2", "m0", "m1", "n0", "n1", "n2", "n3"]


@pytest.mark.parametrize("per_actor", [1, 3])
def test_backpressure_bounds_calls_in_flight(
    ray_local: tuple[RayCluster, str], make_job: MakeJob, per_actor: int
) -> None:
    jobs = [make_job(f"b{i:02d}") for i in range(20)]
    with ActorPool(PoolConfig(actors=2, max_in_flight_per_actor=per_actor), CROSSFADE) as pool:
        results = list(pool.run(jobs))
        stats = pool.stats()
    assert all(r.ok for r in results)
    assert stats.in_flight_limit == 2 * per_actor
    assert stats.max_in_flight == stats.in_flight_limit  # filled to the bound, never past it


def test_rerun_keeps_the_existing_render(ray_local: tuple[RayCluster, str], make_job: MakeJob) -> None:
    jobs = [make_job(f"i{i}") for i in range(3)]
    with ActorPool(PoolConfig(actors=1), CROSSFADE) as pool:
        first = {r.job.render_key: r for r in pool.run(jobs)}
        stamps = {p: os.stat(p).st_mtime_ns for r in first.values() for p in r.frame_paths}
        second = {r.job.render_key: r for r in pool.run(jobs)}
    for key, r in second.items():
        assert r.ok and r.meta == {"kept_existing": True}
        assert r.frame_hashes == first[key].frame_hashes and r.frame_paths == first[key].frame_paths
    assert {p: os.stat(p).st_mtime_ns for p in stamps} == stamps


def test_one_output_folder_is_rendered_by_one_call_at_a_time(
    ray_local: tuple[RayCluster, str], make_job: MakeJob, assert_published: Published, tmp_path: Path
) -> None:
    twins = [make_job(f"t{i}", out_dir=str(tmp_path / "renders" / "same")) for i in range(2)]
    with ActorPool(PoolConfig(actors=2), CROSSFADE) as pool:
        first, second = sorted(pool.run(twins), key=lambda r: r.attempts[0].started_at)
    assert first.ok and second.ok and second.meta == {"kept_existing": True}
    assert second.attempts[0].started_at >= first.attempts[0].finished_at
    assert_published([first], tmp_path / "renders")


def test_run_needs_a_started_pool_and_runs_once_at_a_time(
    ray_local: tuple[RayCluster, str], make_job: MakeJob
) -> None:
    with pytest.raises(RuntimeError, match="not started"):
        next(ActorPool(PoolConfig(actors=1), CROSSFADE).run([make_job("x")]))
    with ActorPool(PoolConfig(actors=1), CROSSFADE) as pool:
        running = pool.run([make_job(f"y{i}") for i in range(3)])
        assert next(running).ok
        with pytest.raises(RuntimeError, match="already running"):
            next(pool.run([make_job("z")]))
        running.close()  # abandoned midway: the pool is cleared and usable again
        pool.wait_workers()
        assert [r.ok for r in pool.run([make_job("w")])] == [True]


def test_pairs_submitted_while_running_join_the_run(ray_local: tuple[RayCluster, str], make_job: MakeJob) -> None:
    """What the quality policy does: a pair's result seen, another render of it queued on the same pool."""
    with ActorPool(PoolConfig(actors=1, max_in_flight_per_actor=1), CROSSFADE) as pool:
        with pytest.raises(RuntimeError, match="needs a running run"):
            pool.submit(make_job("early"))
        seen = []
        for result in pool.run([make_job("a"), make_job("b")]):
            seen.append(result.job.render_key)
            if result.job.render_key in ("b", "b2"):  # the last result of the run, then of the submitted pair
                pool.submit(make_job(result.job.render_key + "2", seed=9))
        assert seen == ["a", "b", "b2", "b22"] and pool.stats().pairs_ok == 4


def test_an_abandoned_run_restarts_its_busy_actors_only_for_the_next_run(
    ray_local: tuple[RayCluster, str], make_job: MakeJob
) -> None:
    with ActorPool(PoolConfig(actors=2), CROSSFADE) as pool:
        run = pool.run([make_job(f"a{i:02d}", seed=i) for i in range(8)])
        next(run)
        run.close()  # the caller stops with pairs still queued on the actors (a batch the shot DB stopped)
        assert [w.restarts for w in pool.stats().workers] == [0, 0]  # no model reloaded for a closing pool
        (result,) = pool.run([make_job("b00", seed=99)])
        stats = pool.stats()
    assert result.ok, result.error
    assert sum(w.restarts for w in stats.workers) >= 1  # the busy ones were cleared before the new run
    assert all(w.alive for w in stats.workers)


def test_pool_refuses_what_the_cluster_cannot_hold(ray_local: tuple[RayCluster, str]) -> None:
    with pytest.raises(PoolStartError, match=r"actors=3 x WorkerConfig CPU=1 needs CPU=3, the Ray cluster has CPU=2"):
        ActorPool(PoolConfig(actors=3), WorkerConfig(backend="crossfade")).start()
    with pytest.raises(PoolStartError, match=r"vram_gb=12 needs vram_gb=12, the Ray cluster has vram_gb=0"):
        ActorPool(PoolConfig(actors=1), WorkerConfig(backend="crossfade", resources={"vram_gb": 12})).start()
    with pytest.raises(PoolStartError, match=r"2 of 2 render workers failed to start: .*unknown backend 'nope'"):
        ActorPool(PoolConfig(actors=2), WorkerConfig(backend="nope", num_cpus=0.5)).start()
    deadline = time.monotonic() + 20  # Ray frees a killed actor's resources asynchronously
    while ray.available_resources().get("CPU", 0.0) < 2.0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ray.available_resources().get("CPU") == 2.0  # nothing left booked by the failed pools


def test_one_loopback_policy_for_settings_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    here = [None, "", "local", "127.0.0.1:6379", "[::1]:6379", "::1", "localhost:6379", "ray://127.0.0.1:10001"]
    assert all(on_this_machine(a) for a in here)
    assert not any(on_this_machine(a) for a in ("10.1.2.3:6379", "ray://10.0.0.5:10001", "head-node:6379"))
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")  # a farm named by the environment, as connect() reads it
    assert not on_this_machine(None) and on_this_machine("127.0.0.1:6379")


def test_sampling_steps_reach_the_driver_while_the_pair_renders(ray_local: tuple[RayCluster, str], make_job: MakeJob) -> None:
    steps: list[tuple[str, int, int, float]] = []
    slow = WorkerConfig(backend="simulated-gpu", backend_settings={"seconds": 3.0}, num_cpus=0.5)
    on_step = lambda key, step, total: steps.append((key, step, total, time.monotonic()))  # noqa: E731
    with ActorPool(PoolConfig(actors=1), slow, on_step=on_step) as pool:
        (result,) = list(pool.run([make_job("slow", times=(0.25, 0.5, 0.75))]))
        done = time.monotonic()
    assert result.ok
    assert steps and {(key, total) for key, _, total, _ in steps} == {("slow", 3)}
    assert all(1 <= step <= 3 for _, step, _, _ in steps)
    assert steps[0][3] < done - 0.5  # heard while the pair still rendered, not with its result
