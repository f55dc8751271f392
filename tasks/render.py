"""Render: every pair of every shot as one queue on the Ray actor pool; shots come back as they complete.

Each pair gets a render key (tasks.provenance). A key whose frames are already finished is reused, so a
re-run renders only what changed. A pair whose render the quality scores flag gets what its shot's
policy says (tasks/qa.py): kept and flagged, or rendered again with another seed or another backend,
each try a render key of its own. A re-run replays those decisions from the tries' recorded scores, so
it renders no try it has. Results are recorded in the shot DB in small batches, and a shot is handed on
for assembly the moment its last pair settles, while other shots are still rendering.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from cluster import ActorPool, PairJob, PairResult, PoolConfig, PoolStartError, WorkerConfig, connect, on_this_machine
from tasks.detect import ShotPlan
from tasks.provenance import render_key
from tasks.qa import Decision, PairQA, QAPolicy, Retake, Tried, next_step, pair_qa
from tasks.settings import Settings
from tooncrafter_model.backend import BackendIdentity, backend_spec, identify
from tooncrafter_model.errors import one_line
from tooncrafter_model.quality import judge
from tooncrafter_model.store import complete_frames

# The finished renders among some keys, each with its recorded quality scores (None without).
Finished = Callable[[list[str]], Mapping[str, Mapping[str, Any] | None]]


@dataclass(frozen=True)
class PairWork:
    """One render of a pair of a shot: its render key, where its frames live, and either the job that
    renders it or, when reused, the frames already on disk.

    A pair the quality policy tries again gets a PairWork per try, each with its own backend, seed and key;
    a try that is not the first carries the earlier ones (`earlier`). The PairWork a shot ends with is the
    one whose frames it uses, with the policy's `decision` when its first try was flagged.
    """

    index: int  # into plan.pairs
    render_key: str
    out_dir: Path
    job: PairJob | None
    frames: int  # in-betweens this pair needs
    identity: BackendIdentity  # what made (or makes) it, with `seed` and `params`
    seed: int
    params: Mapping[str, Any]
    sketch_hashes: tuple[tuple[float, str], ...] = ()  # (time, pixel hash) of its sketch guidance
    stored: tuple[str, ...] = ()  # the reused render's frame paths
    verdict: Tried | None = None  # its flags under the shot's policy, once finished
    earlier: tuple[PairWork, ...] = ()  # the pair's earlier tries, finished and flagged, first first
    decision: Decision | None = None


@dataclass(frozen=True)
class ShotWork:
    """A shot's plan, the backend identity its keys were computed with, its QA policy, and its pairs' work."""

    plan: ShotPlan
    identity: BackendIdentity
    pairs: tuple[PairWork, ...]
    policy: QAPolicy

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


@dataclass
class ShotRenders:
    """A shot whose pairs have all settled: frame paths per render key, and what failed. Its `work` holds
    the pairs as settled (the tries the policy chose), `qa` the decided pairs as the dashboard shows them."""

    work: ShotWork
    frames: dict[str, tuple[str, ...]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    rendered: int = 0
    reused: int = 0
    failed: int = 0
    qa: tuple[PairQA, ...] = ()
    worker_seconds: float = 0.0  # every attempt of the renders it asked for first, failed and retried ones too

    @property
    def ok(self) -> bool:
        return not self.errors


class QAHooks(Protocol):
    """The shot DB side of the quality policy while a batch renders (tasks.qa.QALog)."""

    def claim(self, work: ShotWork, pair: PairWork) -> None: ...

    def settled(self, done: ShotRenders) -> None: ...


def _stored(out_dir: Path, count: int) -> tuple[str, ...] | None:
    paths = complete_frames(out_dir, count)
    return tuple(map(str, paths)) if paths is not None else None


class _Tries:
    """Makes a pair's tries (render key and job) and moves a pair on once a try has finished; knows each
    backend's identity (asked once per backend)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._identities: dict[str, BackendIdentity] = {}

    def identity(self, backend: str) -> BackendIdentity:
        if backend not in self._identities:
            self._identities[backend] = identify(backend, **self.settings.backend_settings(backend))
        return self._identities[backend]

    def first(self, plan: ShotPlan, index: int, policy: QAPolicy) -> PairWork:
        """Pair `index` as its shot asks: the shot's backend, seed and params."""
        shot = plan.shot
        return self._make(plan, index, shot.backend, shot.render.seed, shot.render.params, policy)

    def finished(
        self, work: ShotWork, take: PairWork, stored: tuple[str, ...], record: Mapping[str, Any] | None
    ) -> PairWork:
        """`take` finished with frames `stored` and scores `record`: the pair's next try (a job to render),
        or the try it settles on (no job; with the decision when its first try was flagged)."""
        policy, shot = work.policy, work.plan.shot
        verdict = Tried(take.render_key, take.identity.name, take.seed, *judge(record, policy.thresholds))
        done = replace(take, job=None, stored=stored, verdict=verdict, earlier=())
        takes = (*take.earlier, done)
        step = next_step(policy, shot.backend, shot.render.seed, [t.verdict for t in takes if t.verdict])
        if isinstance(step, Retake):
            params = shot.render.params if step.backend == shot.backend else {}
            retake = self._make(work.plan, take.index, step.backend, step.seed, params, policy)
            return replace(retake, earlier=takes)
        if step is None:
            return done
        return replace(takes[step.accepted], decision=step)

    def _make(
        self, plan: ShotPlan, index: int, backend: str, seed: int, params: Mapping[str, Any], policy: QAPolicy
    ) -> PairWork:
        shot, pair = plan.shot, plan.pairs[index]
        identity = self.identity(backend)
        frames = {k.frame: k for k in plan.keyframes}
        a, b = frames[pair.a], frames[pair.b]
        guided = backend_spec(backend).sketches  # a fallback that takes no sketches renders without them
        inside = [s for s in plan.sketches if guided and pair.a < s.frame < pair.b]
        sketches = [((s.frame - pair.a) / (pair.b - pair.a), s) for s in inside]
        key = render_key(
            hash_a=a.pixel_hash, hash_b=b.pixel_hash, identity=identity, times=pair.times, seed=seed,
            prompt=shot.prompt, params=params, sketch_hashes=[(t, s.pixel_hash) for t, s in sketches],
        )
        out_dir = self.settings.store.render(key)
        job = PairJob(
            render_key=key, shot=shot.id, frame_a=str(a.path), frame_b=str(b.path), times=pair.times,
            out_dir=str(out_dir), seed=seed, prompt=shot.prompt, priority=shot.priority,
            params=tuple(sorted(params.items())), sketches=tuple((t, str(s.path)) for t, s in sketches),
            qa_thresholds=tuple(sorted(asdict(policy.thresholds).items())),
        )
        hashes = tuple((t, s.pixel_hash) for t, s in sketches)
        return PairWork(index, key, out_dir, job, pair.inbetweens, identity, seed, dict(params), hashes)


def plan_work(
    plans: Iterable[ShotPlan], settings: Settings, finished: Finished
) -> tuple[list[ShotWork], list[tuple[str, str]]]:
    """Compute every pair's render key and job. A pair whose render is finished (in the shot DB, its frames
    on disk) is reused, or, when the shot's QA policy would try it again, replayed: its next try is looked
    up in turn (one `finished` call per round of tries), and only a try that is not finished is rendered.
    A shot that cannot be planned (its backend cannot say what it is: a checkpoint missing) is returned
    with its one-line error, (shot id, error), and the others go on."""
    tries = _Tries(settings)
    works, failed = [], []
    for plan in plans:
        try:
            policy = QAPolicy.of(plan.shot, settings)
            pairs = tuple(tries.first(plan, i, policy) for i, p in enumerate(plan.pairs) if p.inbetweens)
            works.append(ShotWork(plan, tries.identity(plan.shot.backend), pairs, policy))
        except Exception as exc:  # whatever one shot raises fails that shot only
            failed.append((plan.shot.id, f"{plan.shot.id}: {one_line(exc)}"))
    current = {(w, i): p for w, work in enumerate(works) for i, p in enumerate(work.pairs)}
    open_ = list(current)
    while open_:
        found = finished(list(dict.fromkeys(current[c].render_key for c in open_)))
        moved = []
        for c in open_:
            take = current[c]
            stored = _stored(take.out_dir, take.frames) if take.render_key in found else None
            if stored is not None:
                current[c] = tries.finished(works[c[0]], take, stored, found[take.render_key])
                moved += [c] if current[c].job is not None else []
        open_ = moved
    return [replace(work, pairs=tuple(current[(w, i)] for i in range(len(work.pairs)))) for w, work in enumerate(works)], failed


def worker_seconds(result: PairResult) -> float:
    """What a pair cost the farm: the time its workers spent on it, every attempt (a failed one too)."""
    return sum(max(0.0, a.finished_at - a.started_at) for a in result.attempts)


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
        umask=settings.umask,
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
    qa: QAHooks | None = None,
    on_step: Callable[[str, int, int], None] | None = None,
    so_far: dict[str, ShotRenders] | None = None,
) -> Iterator[ShotRenders]:
    """Render every job of `works`, yielding each shot as soon as all its pairs have settled.

    A render key needed by several pairs (a cycle, or the same drawings in two shots) is rendered once. A
    flagged pair's next try joins the queue as soon as its result is seen (on the same pool, or on its
    backend's pool after this one). `on_result` sees every pair result (to record it); `qa.claim` sees a
    try before it is queued; `flush` runs before a shot is yielded, so its renders are committed before
    anything assembles them, then `qa.settled` records its decisions. `on_step(render key, step, steps)`
    hears a long pair's sampling steps as its worker reports them. Shots with nothing to render come first.
    `so_far`, when given, holds every shot's renders as they stand, yielded or not: what a batch that had to
    stop still counts.
    """
    tries = _Tries(settings)
    state = so_far if so_far is not None else {}
    state.update((w.shot_id, ShotRenders(w)) for w in works)
    current = {w.shot_id: list(w.pairs) for w in works}  # each pair's try in flight, then the one it ends with
    open_: dict[str, int] = defaultdict(int)  # pairs of a shot not settled yet
    waiting: dict[str, list[tuple[str, int]]] = defaultdict(list)  # render key -> (shot, pair position)
    queued: dict[str, dict[str, PairJob]] = defaultdict(dict)  # backend -> render key -> job, for its pool

    def settle(shot_id: str) -> ShotRenders:
        done = state[shot_id]
        done.work = replace(done.work, pairs=tuple(current[shot_id]))
        done.qa = pair_qa(done, settings)
        if qa:
            qa.settled(done)
        return done

    def wait(shot_id: str, pos: int, take: PairWork) -> PairJob | None:
        """`take` becomes the pair's try in flight; its job when no other pair waits for its key already."""
        current[shot_id][pos] = take
        waiting[take.render_key].append((shot_id, pos))
        return take.job if len(waiting[take.render_key]) == 1 else None

    for w in works:
        for pos, p in enumerate(w.pairs):
            if p.job is None:
                state[w.shot_id].frames[p.render_key] = p.stored
                state[w.shot_id].reused += 1
                continue
            open_[w.shot_id] += 1
            if (job := wait(w.shot_id, pos, p)) is not None:
                queued[p.identity.name][p.render_key] = job
    for w in works:
        if not open_[w.shot_id]:
            yield settle(w.shot_id)
    if not queued:
        return

    def on_pair(result: PairResult, backend: str, pool: ActorPool) -> Iterator[ShotRenders]:
        for n, (shot_id, pos) in enumerate(waiting.pop(result.job.render_key)):
            shot, take = state[shot_id], current[shot_id][pos]
            shot.worker_seconds += worker_seconds(result) if n == 0 else 0.0
            if not result.ok:
                pair = shot.work.plan.pairs[take.index]
                shot.errors.append(f"{shot_id} pair {pair.a}->{pair.b}: {result.error}")
                shot.failed += 1
            else:
                # Frames the worker found on disk (another batch rendered them since this one planned)
                # were not rendered by this run: two racing batches must not both report them rendered.
                made = n == 0 and not result.meta.get("kept_existing")
                shot.rendered += made
                shot.reused += not made
                scores = result.meta.get("qa")
                record = scores if isinstance(scores, dict) else None
                later = tries.finished(shot.work, take, result.frame_paths, record)
                if later.job is not None:  # the policy tries the pair again
                    if qa:
                        qa.claim(shot.work, later)
                    if (job := wait(shot_id, pos, later)) is not None:
                        if later.identity.name == backend:
                            pool.submit(job)
                        else:
                            queued[later.identity.name][later.render_key] = job
                    continue
                current[shot_id][pos] = later
                shot.frames[later.render_key] = later.stored
            open_[shot_id] -= 1
            if not open_[shot_id]:
                flush()
                yield settle(shot_id)

    with connect(settings.ray_address, loopback=on_this_machine(settings.ray_address)):
        while queued:  # one pool per backend at a time; a fallback's pool comes after the pools it falls back from
            backend, by_key = queued.popitem()
            pool_cfg, worker_cfg = pool_configs(settings, backend)
            pool = ActorPool(pool_cfg, worker_cfg, on_step=on_step)
            try:
                pool.start()
            except PoolStartError as exc:  # this backend's pairs fail with the reason; other backends go on
                for job in by_key.values():
                    result = PairResult(job, ok=False, error=str(exc))
                    on_result(result)
                    yield from on_pair(result, backend, pool)
                continue
            with pool:
                for result in pool.run(by_key.values()):
                    on_result(result)
                    yield from on_pair(result, backend, pool)
