"""Publish: a shot whose pairs are done -> its full frame sequence, stylized, as a new numbered version.

Nothing is assembled when the latest version already has the same assembly key. A new version is
written into a staging folder named by its owner (this process); then its row is committed as
`placing` with the next number (the shot's row locked), the folder renamed to vNNN, and the row marked
published. A kill at any instant leaves a state the next run settles (tasks/record.py,
`settle_dead_runs`; ARCHITECTURE.md, "Publishing"): a version folder and its row always agree.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import shot_db
from shot_db import Session, ShotDB
from shot_db.models import ShotVersion, VersionStatus
from shot_db.records import OutputFile, OutputFrame, VersionOutputs, VersionPair
from tasks.assemble import ShotOutputs, assemble_shot, parse_fps
from tasks.contact import SHEET_NAME, THUMB_NAME, SheetFrame, write_previews
from tasks.colour import Stylize, lut_hash, stylize_identity
from tasks.deliver import assembly_output, build, deliverable_class, video_of
from tasks.detect import InbetweenSlot, frame_layout
from tasks.provenance import assembly_key, pair_provenance
from tasks.qa import PairQA
from tasks.record import run, still_ours
from tasks.render import ShotRenders
from tasks.owner import this_process
from tasks.settings import Settings
from tasks.testhook import pause_at
from tooncrafter_model.errors import ToonfarmError
from tooncrafter_model.store import (
    SIDECAR,
    previews_folder,
    shot_folder,
    staging_folders,
    version_file,
    version_folder,
    version_name,
    version_numbers,
    version_staging,
    write_json,
)


@dataclass(frozen=True)
class ShotOutcome:
    """How one shot of a batch ended."""

    shot_id: str
    status: Literal["new-version", "unchanged", "failed"]
    version: int | None = None
    mp4: str | None = None  # the version's video a browser plays (the H.264 MP4), when it delivered one
    frame_count: int = 0
    rendered: int = 0
    reused: int = 0
    failed: int = 0
    errors: tuple[str, ...] = ()
    sidecar: str | None = None
    outputs: tuple[OutputFile, ...] = ()  # every deliverable of the version
    qa: tuple[PairQA, ...] = ()  # pairs the quality policy decided (tasks/qa.py), for the dashboard
    worker_seconds: float = 0.0  # the render time this batch spent on the shot's pairs, every attempt
    sheet: str | None = None  # the version's contact sheet and thumbnail (tasks/contact.py), when written
    thumbnail: str | None = None


@dataclass(frozen=True)
class _Source:
    path: str
    ident: str  # what the assembly key hashes for this frame
    render_key: str | None = None
    inbetween: int | None = None  # 1-based
    keyframe_hash: str | None = None
    keys: tuple[Path, Path] | None = None  # an in-between's two keyframe images (its palette)


def _sources(done: ShotRenders) -> list[_Source]:
    plan = done.work.plan
    key_of = {p.index: p.render_key for p in done.work.pairs}
    image_of = {k.frame: k.path for k in plan.keyframes}
    out = []
    for slot in frame_layout(plan):
        if isinstance(slot, InbetweenSlot):
            key = key_of[slot.pair]
            keys = (image_of[plan.pairs[slot.pair].a], image_of[plan.pairs[slot.pair].b])
            out.append(_Source(done.frames[key][slot.index], f"r:{key}:{slot.index + 1}", key, slot.index + 1, keys=keys))
        else:
            k = plan.keyframes[slot.keyframe]
            out.append(_Source(str(k.path), f"k:{k.pixel_hash}", keyframe_hash=k.pixel_hash))
    return out


def publish_shot(db: ShotDB, done: ShotRenders, settings: Settings, flow_run_id: str | None) -> ShotOutcome:
    """Assemble, stylize and record a new version of the shot, unless nothing changed since the latest."""
    plan, shot = done.work.plan, done.work.plan.shot
    if not done.ok:
        return _outcome(done, "failed", errors=tuple(done.errors))
    sources = _sources(done)
    fps = parse_fps(shot.fps)
    lut_sha = lut_hash(shot.lut) if shot.lut else None
    look = Stylize(lut=shot.lut, palette_lock=shot.colour.palette_lock, ocio=shot.colour.ocio)
    colour, colour_record = stylize_identity(look)
    deliverables = build(shot.deliver)
    timecode = shot.edit.source_timecode if shot.edit is not None else None
    deliver = [d.identity() for d in deliverables]
    output = {**assembly_output(deliverables, timecode), **({"colour": colour} if colour else {})}  # absent: keys made before it hold
    akey = assembly_key(layout=[s.ident for s in sources], fps=str(fps), lut_sha256=lut_sha, output=output)

    def latest_or_makers(s: Session) -> tuple[ShotVersion | None, dict[str, dict[str, Any]]]:
        """The latest version when it has this assembly key (nothing to do), else who made each pair."""
        row = shot_db.upsert_shot(session=s, show=shot.show, sequence=shot.sequence, code=shot.code, fps=shot.fps)
        latest = shot_db.latest_version(session=s, shot=row)
        if latest is not None and latest.assembly_key == akey:
            return latest, {}
        made_by: dict[str, dict[str, Any]] = {}
        for p in done.work.pairs:
            r = shot_db.find_finished_render(session=s, render_key=p.render_key)
            if r is not None:
                made_by[p.render_key] = {"worker": r.worker, "node": r.node, "started_at": r.started_at,
                                         "finished_at": r.finished_at, "seconds": r.seconds}
        return None, made_by

    folder = shot_folder(shot.output or settings.output_root, shot.show, shot.sequence, shot.code)
    same, made_by = run(db, latest_or_makers)
    if same is not None:
        return _outcome(done, "unchanged", version=same.number, outputs=_files(same), frames=same.frame_count,
                        folder=version_folder(folder, same.number))

    owner = this_process()
    staging = version_staging(folder, owner.slug)
    try:
        outputs = assemble_shot(
            [s.path for s in sources], fps, staging, shot.code, stylize=look, palettes=[s.keys for s in sources],
            deliver=deliverables, timecode=timecode,
        )

        def named(number: int) -> VersionOutputs:
            """What version `number` will hold once its staging folder is renamed into place."""
            final = version_folder(folder, number)
            files = tuple(_renamed(o, staging, final, shot.code, number) for o in outputs.outputs)
            frame_files = outputs.frame_files or (None,) * outputs.frame_count
            frames = tuple(
                OutputFrame(str(final / p.relative_to(staging)) if p else None, h, src.render_key, src.inbetween, src.keyframe_hash)
                for p, h, src in zip(frame_files, outputs.frame_hashes, sources, strict=True)
            )
            return VersionOutputs(files, str(final / SIDECAR), frames)

        # Record first, rename after (ARCHITECTURE.md, "Publishing"): the row is committed as placing, so a
        # kill at any instant leaves a row the next run can settle, never a folder the shot DB does not know.
        def reserve(s: Session) -> ShotVersion:
            still_ours(s, flow_run_id)  # a run taken for dead places nothing more: the others settled its versions
            row = shot_db.upsert_shot(session=s, show=shot.show, sequence=shot.sequence, code=shot.code, fps=shot.fps)
            new = shot_db.create_version(
                session=s, shot=row, assembly_key=akey,
                renders=[VersionPair(p.render_key, plan.pairs[p.index].a, plan.pairs[p.index].b) for p in done.work.pairs],
                keyframes={k.frame: k.pixel_hash for k in plan.keyframes}, outputs=named, fps=float(fps),
                origins={k.frame: k.origin for k in plan.keyframes if k.origin},
                settings={"lut": str(shot.lut) if shot.lut else None, "lut_sha256": lut_sha, "deliver": deliver,
                          "colour": colour_record},
                flow_run_id=flow_run_id, owner=owner.token, first_free=max(version_numbers(folder), default=0) + 1,
            )
            return new.version

        # A connection dropped after the commit left the server makes `run` try again: create_version then
        # finds this very assembly as the latest, placing and owned by this process, and it is ours to place.
        reserved = run(db, reserve)
        version, version_id, sidecar, files = reserved.number, reserved.id, reserved.sidecar_path, _files(reserved)
        created = reserved.status is VersionStatus.placing and reserved.owner == owner.token
        if not created:  # another batch published this very assembly meanwhile
            return _outcome(done, "unchanged", version=version, outputs=files, frames=outputs.frame_count, sidecar=sidecar,
                            folder=Path(sidecar).parent)
        pause_at("reserved")
        final = version_folder(folder, version)
        try:
            for o in outputs.outputs:
                _name_by_version(o, staging, shot.code, version)
            record = _provenance(
                done, sources, outputs, named(version).outputs, final, version, akey, lut_sha, flow_run_id, deliver, made_by
            )
            write_json(staging / SIDECAR, {**record, "colour": colour_record})
            _write_previews(outputs, sources, staging, f"{shot.code} {version_name(version)}")
            os.rename(staging, final)
        except BaseException:
            # The folder never got into place: the number is free again.
            run(db, lambda s: shot_db.drop_version(session=s, version_id=version_id))
            raise
        pause_at("placed")
        try:
            run(db, lambda s: shot_db.publish_version(session=s, version_id=version_id))
        except ToonfarmError as exc:
            raise type(exc)(f"{version_name(version)} is in place but not yet marked published ({exc}); "
                            "the next run marks it") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return _outcome(done, "new-version", version=version, outputs=files, frames=outputs.frame_count, sidecar=sidecar,
                    folder=final)


def sweep_staging(folders: Iterable[Path], is_dead: Callable[[str], bool]) -> list[Path]:
    """Remove the staging folders that dead runs (`is_dead` of the owner a name carries: tasks/owner.py's
    DeadOwners) left in these shot folders; a live run's stay."""
    removed = []
    for folder in folders:
        for path, owner in staging_folders(folder):
            if is_dead(owner):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    return removed


def _files(version: ShotVersion) -> tuple[OutputFile, ...]:
    return tuple(OutputFile(o.kind, o.path, o.sha256, o.frame_count, dict(o.details)) for o in version.outputs)


def _versioned(output: OutputFile, staging: Path, code: str, number: int) -> Path:
    """Where `output` lies in the staging folder once version `number` is taken: a file named by its version
    (`<code>_v003.mp4`) where its format asks for it, else where it was written."""
    path = Path(output.path)
    return staging / version_file(code, number, path.suffix) if deliverable_class(output.kind).versioned_name else path


def _renamed(output: OutputFile, staging: Path, final: Path, code: str, number: int) -> OutputFile:
    """`output` as it will be in the version folder `final` (`_name_by_version` renames it once the number
    is taken)."""
    path = _versioned(output, staging, code, number)
    return OutputFile(output.kind, str(final / path.relative_to(staging)), output.sha256, output.frame_count, output.details)


def _name_by_version(output: OutputFile, staging: Path, code: str, number: int) -> None:
    """Rename `output` inside the staging folder to the name `_renamed` gave it."""
    target = _versioned(output, staging, code, number)
    if target != Path(output.path):
        Path(output.path).rename(target)


def _outcome(
    done: ShotRenders,
    status: Literal["new-version", "unchanged", "failed"],
    *,
    version: int | None = None,
    outputs: tuple[OutputFile, ...] = (),
    frames: int = 0,
    errors: tuple[str, ...] = (),
    sidecar: str | None = None,
    folder: Path | None = None,
) -> ShotOutcome:
    pictures = previews_folder(folder) if folder else None
    sheet, thumb = ((pictures / name) if pictures else None for name in (SHEET_NAME, THUMB_NAME))
    return ShotOutcome(done.work.shot_id, status, version, video_of(outputs), frames, done.rendered, done.reused,
                       done.failed, errors, sidecar, outputs, done.qa, done.worker_seconds,
                       str(sheet) if sheet and sheet.is_file() else None,
                       str(thumb) if thumb and thumb.is_file() else None)  # fmt: skip


def _write_previews(outputs: ShotOutputs, sources: list[_Source], folder: Path, title: str) -> None:
    """The version's contact sheet and thumbnail (tasks/contact.py), from its assembled PNGs (else its
    sources, before colour). A picture for the dashboard: a disk that refuses it leaves the version whole."""
    paths = outputs.frame_files or tuple(Path(s.path) for s in sources)
    frames = [SheetFrame(Path(p), i, s.render_key is not None) for i, (p, s) in enumerate(zip(paths, sources, strict=True), 1)]
    try:
        write_previews(frames, previews_folder(folder), title=title)
    except (OSError, ValueError):
        shutil.rmtree(previews_folder(folder), ignore_errors=True)


def _provenance(
    done: ShotRenders,
    sources: list[_Source],
    outputs: ShotOutputs,
    files: tuple[OutputFile, ...],
    final: Path,
    number: int,
    akey: str,
    lut_sha: str | None,
    flow_run_id: str | None,
    deliver: list[dict[str, Any]],
    made_by: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """The sidecar: everything that made this version, readable without the shot DB."""
    work, plan = done.work, done.work.plan
    shot = plan.shot
    return {
        "shot": {"show": shot.show, "sequence": shot.sequence, "code": shot.code, "id": shot.id},
        "version": number,
        "assembly_key": akey,
        "flow_run_id": flow_run_id,
        "fps": str(outputs.fps),
        "frame_count": outputs.frame_count,
        "lut": {"path": str(shot.lut) if shot.lut else None, "sha256": lut_sha},
        "deliver": deliver,
        # Paths relative to the version folder: the sidecar still reads right where the folder is copied to.
        "outputs": [
            {"kind": o.kind, "path": Path(o.path).relative_to(final).as_posix(), "sha256": o.sha256,
             "frame_count": o.frame_count, "details": dict(o.details)}
            for o in files
        ],  # fmt: skip
        "backend": work.identity.as_dict(),
        "render": {"seed": shot.render.seed, "prompt": shot.prompt, "params": work.params},
        "keyframes": [
            {"frame": k.frame, "pixel_hash": k.pixel_hash, "path": str(k.path), "source": k.origin}
            for k in plan.keyframes
        ],
        # What reading the media did and found: timecode, alpha composited over which colour, VFR, margin.
        "ingest": {**plan.ingest.to_json(), "first_frame": plan.first_frame, "background": list(shot.background)},
        "sketches": [{"frame": k.frame, "pixel_hash": k.pixel_hash, "path": str(k.path)} for k in plan.sketches],
        "pairs": [
            {
                "a": plan.pairs[p.index].a,
                "b": plan.pairs[p.index].b,
                "render_key": p.render_key,
                "frames": list(done.frames[p.render_key]),
                **made_by.get(p.render_key, {}),
                **pair_provenance(work, p),
            }
            for p in work.pairs
        ],
        "frames": [
            {"number": i, "pixel_hash": h, "source": s.ident}
            for i, (h, s) in enumerate(zip(outputs.frame_hashes, sources, strict=True), 1)
        ],
    }
