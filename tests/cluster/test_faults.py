"""Real failures on a local Ray: a SIGKILLed actor, a hung pair, bad output caught by QA, a pair that
always fails. The batch always finishes, every failed attempt is kept, and nothing partial is visible."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from cluster.config import PoolConfig, WorkerConfig
from cluster.connect import RayCluster
from cluster.jobs import PairJob, PairResult
from cluster.pool import ActorPool

from .conftest import keyframes

MakeJob = Callable[..., PairJob]
Published = Callable[[list[PairResult], Path], None]


def simulated(seconds: float, **settings: object) -> WorkerConfig:
    """Simulated GPU workers that only sleep: a quarter CPU each is plenty."""
    return WorkerConfig(
        backend="simulated-gpu",
        backend_settings={"seconds": seconds, **settings},
        num_cpus=0.25,
        reason="simulated backend sleeps; fractional CPUs let tests pack actors on 2 cores",
    )


def test_sigkilled_actor_restarts_reloads_and_its_pair_is_retried(
    ray_local: tuple[RayCluster, str], make_job: MakeJob, assert_published: Published, tmp_path: Path
) -> None:
    jobs = [make_job(f"s{i}", seed=i) for i in range(8)]
    with ActorPool(PoolConfig(actors=2), simulated(0.6)) as pool:
        victim = pool.stats().workers[0]
        results = []
        for result in pool.run(jobs):
            if not results:  # the victim holds a running pair and a queued one now
                os.kill(victim.pid, signal.SIGKILL)
            results.append(result)
        assert pool.wait_workers() == 2
        stats = {w.worker: w for w in pool.stats().workers}
        later = list(pool.run([make_job(f"after{i}") for i in range(4)]))
    assert all(r.ok for r in results), [r.error for r in results]
    retried = [r for r in results if len(r.attempts) > 1]
    assert len(retried) == 1
    failed, success = retried[0].attempts
    assert failed.worker == victim.worker and failed.error.startswith("worker died: Actor")
    assert success.error is None and success.worker != victim.worker  # retried on the other actor
    assert stats[victim.worker].restarts == 1 and stats[victim.worker].pid != victim.pid
    assert stats[victim.worker].model_loads == 2  # the restarted actor loaded its model again
    assert {w.model_loads for name, w in stats.items() if name != victim.worker} == {1}
    on_victim = [a for r in later for a in r.attempts if a.worker == victim.worker]
    assert on_victim and {a.model_loads for a in on_victim} == {2}
    assert_published(results + later, tmp_path / "renders")


def test_hung_pair_times_out_and_succeeds_elsewhere(
    ray_local: tuple[RayCluster, str], make_job: MakeJob, assert_published: Published, tmp_path: Path
) -> None:
    worker = simulated(0.1, fault="hang", fault_once_dir=str(tmp_path / "faults"))
    jobs = [make_job(f"h{i}") for i in range(4)]
    with ActorPool(PoolConfig(actors=2, pair_timeout_s=3.0), worker) as pool:
        results = list(pool.run(jobs))
        pool.wait_workers()
        stats = pool.stats()
    assert all(r.ok for r in results), [r.error for r in results]
    (hung,) = [r for r in results if len(r.attempts) > 1]
    first, second = hung.attempts
    assert first.error == "timed out after 3 s" and first.finished_at - first.started_at >= 3.0
    assert second.error is None and second.worker != first.worker
    killed = {w.worker: w for w in stats.workers}[first.worker]
    assert killed.restarts == 1 and killed.model_loads == 2 and killed.alive
    assert_published(results, tmp_path / "renders")


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("black", "QAError: frame 0001 (t=0.25): all black"),
        ("identity", "QAError: frame 0001 (t=0.25): identical to keyframe A"),
        ("crash", "worker died: "),
    ],
)
def test_bad_output_or_crash_is_retried_on_another_actor(
    ray_local: tuple[RayCluster, str],
    make_job: MakeJob,
    assert_published: Published,
    tmp_path: Path,
    fault: str,
    error: str,
) -> None:
    worker = simulated(0.0, fault=fault, fault_once_dir=str(tmp_path / "faults"))
    jobs = [make_job(f"q{i}") for i in range(4)]
    renders = tmp_path / "renders"
    renders.mkdir()
    for job in jobs:  # what a worker killed mid-write in an earlier run would have left
        (renders / f".{job.render_key}.tmp-stale").mkdir()
    with ActorPool(PoolConfig(actors=2), worker) as pool:
        results = list(pool.run(jobs))
    assert all(r.ok for r in results), [r.error for r in results]
    (retried,) = [r for r in results if len(r.attempts) > 1]
    first, second = retried.attempts
    assert first.error.startswith(error) and second.error is None
    assert second.worker != first.worker
    stale = sorted(p.name for p in renders.iterdir() if p.name.startswith("."))
    if fault == "crash":  # a pair whose worker died gets its staging folders swept
        assert f".{retried.job.render_key}.tmp-stale" not in stale
    for name in stale:
        (renders / name).rmdir()
    assert_published(results, renders)


def test_a_pair_that_keeps_failing_fails_alone(
    ray_local: tuple[RayCluster, str], make_job: MakeJob, assert_published: Published, tmp_path: Path
) -> None:
    worker = simulated(0.0, fault="black", fault_seed=13)
    jobs = [make_job(f"f{i}", seed=10 + i) for i in range(6)]
    with ActorPool(PoolConfig(actors=2, max_attempts=3), worker) as pool:
        results = list(pool.run(jobs))
        stats = pool.stats()
    bad = [r for r in results if not r.ok]
    assert [r.job.seed for r in bad] == [13]
    (failed,) = bad
    assert len(failed.attempts) == 3 and all(a.error for a in failed.attempts)
    assert failed.error == failed.attempts[-1].error and "all black" in failed.error
    assert {a.worker for a in failed.attempts} == {w.worker for w in stats.workers}  # tried on both
    assert all(r.ok and len(r.attempts) == 1 for r in results if r is not failed)
    assert stats.pairs_ok == 5 and stats.pairs_failed == 1
    assert sum(w.attempts_failed for w in stats.workers) == 3
    assert_published(results, tmp_path / "renders")


def test_when_every_actor_is_gone_the_rest_fail_with_the_reason(
    ray_local: tuple[RayCluster, str], make_job: MakeJob, assert_published: Published, tmp_path: Path
) -> None:
    worker = simulated(0.0, fault="crash", fault_seed=1)
    jobs = [make_job("dies", seed=1, priority=1)] + [make_job(f"w{i}", seed=2) for i in range(3)]
    with ActorPool(PoolConfig(actors=1, max_restarts=0, max_in_flight_per_actor=1), worker) as pool:
        results = {r.job.render_key: r for r in pool.run(jobs)}
        assert pool.wait_workers() == 0
    assert not any(r.ok for r in results.values())
    assert results["dies"].attempts[0].error.startswith("worker died:")
    assert all(results[f"w{i}"].error.startswith("no live render workers left (") for i in range(3))
    assert all(results[f"w{i}"].attempts == () for i in range(3))
    assert_published(list(results.values()), tmp_path / "renders")


def test_a_bad_job_is_not_retried_elsewhere(
    ray_local: tuple[RayCluster, str], make_job: MakeJob, assert_published: Published, tmp_path: Path
) -> None:
    """A UserError says the job itself is bad (here: keyframes of two sizes): no other worker can do it."""
    small, _ = keyframes(tmp_path / "small", size=(16, 16))
    jobs = [make_job("odd", frame_a=small), make_job("fine")]
    with ActorPool(PoolConfig(actors=2, max_attempts=3), simulated(0.0)) as pool:
        results = {r.job.render_key: r for r in pool.run(jobs)}
    odd = results["odd"]
    assert not odd.ok and len(odd.attempts) == 1 and not odd.attempts[0].retry
    assert odd.error is not None and odd.error.startswith("BackendError: keyframes differ in size")
    assert results["fine"].ok and results["fine"].attempts[0].retry
    assert_published(list(results.values()), tmp_path / "renders")
