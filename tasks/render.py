"""Render: every pair of every shot as one queue on the Ray actor pool; shots come back as they complete.

Each pair gets a render key (tasks.provenance). A key whose frames are already finished is reused, so a
re-run renders only what changed. Results are recorded in the shot DB in small batches, and a shot is
handed on for assembly the moment its last pair settles, while other shots are still rendering.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from cluster import ActorPool, PairJob, PairResult, PoolConfig, WorkerConfig, connect, on_this_machine
from tasks.detect import ShotPlan
from tasks.provenance import render_key
from tasks.settings import Settings
from tooncrafter_model.backend import BackendIdentity, backend_spec, identify
from tooncrafter_model.store import complete_frames


@dataclass(frozen=True)
class PairWork:
    """One pair of a shot: its render key, where its frames live, and either the job that renders it or,
    when reused, the frames already on disk."""

    index: int  # into plan.pairs
    render_key: str
    out_dir: Path
    job: PairJob | None
    frames: int  # in-betweens this pair needs
    sketch_hashes: tuple[tuple[float, str], ...] = ()  # (time, pixel hash) of its sketch guidance
    stored: tuple[str, ...] = ()  # the reused render's frame paths


@dataclass(frozen=True)
class ShotWork:
    """A shot's plan, the backend identity its keys were computed with, and its pairs' work."""

    plan: ShotPlan
    identity: BackendIdentity
    pairs: tuple[PairWork, ...]

    @property
    def shot_id(self) -> str:
        return self.plan.shot.id

    @property
    def backend(self) -> str:
        return self.plan.shot.backend

    @property
    def params(self) -> dict[str, object]:
        return dict(self.plan.shot.render.params)

    @property
    def jobs(self) -> list[PairJob]:
        return [p.job for p in self.pairs if p.job is not None]

    def describe(self, key: str) -> str:
        """The pairs rendered under `key`, by source frame numbers, for messages."""
        pairs = [self.plan.pairs[p.index] for p in self.pairs if p.render_key == key]
        return ", ".join(f"{self.shot_id} pair {pair.a}->{pair.b}" for pair in pairs)


@dataclass
class ShotRenders:
    """A shot whose pairs have all settled: frame paths per render key, and what failed."""

    work: ShotWork
    frames: dict[str, tuple[str, ...]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    rendered: int = 0
    reused: int = 0
    failed: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


def _stored(out_dir: Path, count: int) -> tuple[str, ...] | None:
    paths = complete_frames(out_dir, count)
    return tuple(map(str, paths)) if paths is not None else None


def plan_work(
    plans: Iterable[ShotPlan], settings: Settings, finished: Callable[[list[str]], set[str]]
) -> list[ShotWork]:
    """Compute every pair's render key and job. Keys that `finished` reports done (asked once, for all
    keys) and whose frames are on disk are reused instead of rendered."""
    identities: dict[str, BackendIdentity] = {}
    drafts: list[tuple[ShotPlan, BackendIdentity, list[PairWork]]] = []
    for plan in plans:
        shot = plan.shot
        if shot.backend not in identities:
            identities[shot.backend] = identify(shot.backend, **settings.backend_settings(shot.backend))
        identity = identities[shot.backend]
        pairs = [_pair_work(plan, i, identity, settings) for i, p in enumerate(plan.pairs) if p.inbetweens]
        drafts.append((plan, identity, pairs))
    done = finished([p.render_key for _, _, pairs in drafts for p in pairs])
    works = []
    for plan, identity, pairs in drafts:
        stored = [_stored(p.out_dir, p.frames) if p.render_key in done else None for p in pairs]
        chosen = tuple(p if s is None else replace(p, job=None, stored=s) for p, s in zip(pairs, stored, strict=True))
        works.append(ShotWork(plan, identity, chosen))
    return works


def _pair_work(plan: ShotPlan, index: int, identity: BackendIdentity, settings: Settings) -> PairWork:
    """Pair `index` of the plan with its render key and the job that would render it."""
    shot, pair = plan.shot, plan.pairs[index]
    frames = {k.frame: k for k in plan.keyframes}
    a, b = frames[pair.a], frames[pair.b]
    sketches = [((s.frame - pair.a) / (pair.b - pair.a), s) for s in plan.sketches if pair.a < s.frame < pair.b]
    key = render_key(
        hash_a=a.pixel_hash, hash_b=b.pixel_hash, identity=identity, times=pair.times, seed=shot.render.seed,
        prompt=shot.prompt, params=shot.render.params, sketch_hashes=[(t, s.pixel_hash) for t, s in sketches],
    )
    out_dir = settings.store.render(key)
    job = PairJob(
        render_key=key, shot=shot.id, frame_a=str(a.path), frame_b=str(b.path), times=pair.times,
        out_dir=str(out_dir), seed=shot.render.seed, prompt=shot.prompt, priority=shot.priority,
        params=tuple(sorted(shot.render.params.items())), sketches=tuple((t, str(s.path)) for t, s in sketches),
    )
    return PairWork(index, key, out_dir, job, pair.inbetweens, tuple((t, s.pixel_hash) for t, s in sketches))


def pool_configs(settings: Settings, backend: str) -> tuple[PoolConfig, WorkerConfig]:
    """The pool and worker configs for one backend, booked from the settings."""
    spec = backend_spec(backend)
    backend_settings = settings.backend_settings(backend)
    if spec.device and settings.device == "cpu":
        backend_settings["threads"] = max(1, int(settings.actor_cpus))
    worker = WorkerConfig(
        backend=backend,
        backend_settings=backend_settings,
        spec=spec,
        num_cpus=settings.actor_cpus,
        num_gpus=settings.actor_gpus,
        reason="from toonfarm settings (actor_cpus, actor_gpus)",
    )
    pool = PoolConfig(
        actors=settings.actors,
        max_in_flight_per_actor=settings.max_in_flight,
        max_attempts=settings.max_attempts,
        pair_timeout_s=settings.pair_timeout_s,
    )
    return pool, worker


def render_shots(
    works: list[ShotWork],
    settings: Settings,
    on_result: Callable[[PairResult], None],
    flush: Callable[[], None],
) -> Iterator[ShotRenders]:
    """Render every job of `works`, yielding each shot as soon as all its pairs have settled.

    A render key needed by several pairs (a cycle, or the same drawings in two shots) is rendered once.
    `on_result` sees every pair result (to record it); `flush` runs before a shot is yielded, so its
    renders are committed before anything assembles them. Shots with nothing to render come first.
    """
    state = {w.shot_id: ShotRenders(w) for w in works}
    waiting: dict[str, set[str]] = {w.shot_id: set() for w in works}
    needed_by: dict[str, list[str]] = defaultdict(list)  # render key -> shots waiting for it
    jobs: dict[str, dict[str, PairJob]] = defaultdict(dict)  # backend -> render key -> job
    for w in works:
        for p in w.pairs:
            if p.job is None:
                state[w.shot_id].frames[p.render_key] = p.stored
                state[w.shot_id].reused += 1
            elif p.render_key in waiting[w.shot_id]:
                state[w.shot_id].reused += 1  # the same pair again within the shot: rendered once
            else:
                waiting[w.shot_id].add(p.render_key)
                needed_by[p.render_key].append(w.shot_id)
                jobs[w.backend].setdefault(p.render_key, p.job)
    for shot_id, keys in waiting.items():
        if not keys:
            yield state[shot_id]
    if not needed_by:
        return
    with connect(settings.ray_address, loopback=on_this_machine(settings.ray_address)):
        for backend, by_key in jobs.items():
            pool_cfg, worker_cfg = pool_configs(settings, backend)
            with ActorPool(pool_cfg, worker_cfg) as pool:
                for result in pool.run(by_key.values()):
                    on_result(result)
                    key = result.job.render_key
                    for n, shot_id in enumerate(needed_by[key]):
                        shot = state[shot_id]
                        if result.ok:
                            shot.frames[key] = result.frame_paths
                            shot.rendered += n == 0
                            shot.reused += n > 0
                        else:
                            shot.errors.append(f"{shot.work.describe(key)}: {result.error}")
                            shot.failed += 1
                        waiting[shot_id].discard(key)
                        if not waiting[shot_id]:
                            flush()
                            yield shot
