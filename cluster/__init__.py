"""Ray: the render actor pool, resource booking, retries and health checks (the only package importing ray)."""

from cluster.config import PoolConfig, WorkerConfig
from cluster.connect import RayCluster, connect, on_this_machine
from cluster.jobs import Attempt, PairJob, PairResult
from cluster.pool import ActorPool, PoolStartError, PoolStats
from cluster.worker import RenderWorker

__all__ = [
    "ActorPool",
    "Attempt",
    "PairJob",
    "PairResult",
    "PoolConfig",
    "PoolStartError",
    "PoolStats",
    "RayCluster",
    "RenderWorker",
    "WorkerConfig",
    "connect",
    "on_this_machine",
]
