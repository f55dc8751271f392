"""Scheduling on FAKE GPUs: Ray is told this machine has 2 GPUs and 24 GB of VRAM (a custom resource).
Nothing touches a device; what is tested is Ray's bookkeeping as the pool books it."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import pytest
import ray

from cluster.config import PoolConfig, WorkerConfig
from cluster.connect import RayCluster
from cluster.jobs import PairJob
from cluster.pool import ActorPool, PoolStartError

MakeJob = Callable[..., PairJob]


def fake_gpu_worker(num_gpus: float, **resources: float) -> WorkerConfig:
    return WorkerConfig(
        backend="simulated-gpu",
        backend_settings={"seconds": 0.0},
        num_cpus=0.25,
        num_gpus=num_gpus,
        resources=resources,
        reason="fake GPUs: bookkeeping only",
    )


def released(resource: str, amount: float, within_s: float = 20.0) -> bool:
    """Ray frees a killed actor's resources asynchronously: wait until `amount` is available again."""
    deadline = time.monotonic() + within_s
    while ray.available_resources().get(resource, 0.0) < amount and time.monotonic() < deadline:
        time.sleep(0.05)
    return ray.available_resources().get(resource, 0.0) == amount


def test_fake_gpu_one_actor_per_gpu(ray_fake_gpus: tuple[RayCluster, str], make_job: MakeJob) -> None:
    with ActorPool(PoolConfig(actors=2), fake_gpu_worker(1)) as pool:
        gpus = sorted(w.accelerator_ids for w in pool.stats().workers)
        assert ray.available_resources().get("GPU", 0.0) == 0.0
        results = list(pool.run([make_job(f"g{i}") for i in range(6)]))
    assert gpus == [("0",), ("1",)]
    # the backend saw the device Ray assigned, through CUDA_VISIBLE_DEVICES
    assert {r.meta["device"] for r in results} == {"fake-gpu:0", "fake-gpu:1"}


def test_fake_gpu_fractional_booking_packs_two_actors_per_gpu(
    ray_fake_gpus: tuple[RayCluster, str], make_job: MakeJob
) -> None:
    with ActorPool(PoolConfig(actors=4), fake_gpu_worker(0.5)) as pool:
        per_gpu = Counter(w.accelerator_ids for w in pool.stats().workers)
        assert all(r.ok for r in pool.run([make_job(f"h{i}") for i in range(4)]))
    assert per_gpu == {("0",): 2, ("1",): 2}


def test_fake_gpu_extra_actor_is_refused_not_left_waiting(ray_fake_gpus: tuple[RayCluster, str]) -> None:
    with pytest.raises(PoolStartError, match=r"actors=3 x WorkerConfig GPU=1 needs GPU=3, the Ray cluster has GPU=2"):
        ActorPool(PoolConfig(actors=3), fake_gpu_worker(1)).start()


def test_fake_gpu_vram_is_booked_as_a_custom_resource(ray_fake_gpus: tuple[RayCluster, str]) -> None:
    cluster, _ = ray_fake_gpus
    assert cluster.resources["vram_gb"] == 24.0 and cluster.resources["GPU"] == 2.0
    # Four quarter-GPU actors would fit the GPUs, but at 12 GB each only two fit the VRAM.
    with pytest.raises(PoolStartError, match=r"vram_gb=12 needs vram_gb=48, the Ray cluster has vram_gb=24"):
        ActorPool(PoolConfig(actors=4), fake_gpu_worker(0.25, vram_gb=12)).start()
    with ActorPool(PoolConfig(actors=2), fake_gpu_worker(0.25, vram_gb=12)):
        assert ray.available_resources().get("vram_gb", 0.0) == 0.0
    assert released("vram_gb", 24.0)  # given back once the killed actors are gone
