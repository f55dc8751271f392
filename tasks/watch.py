"""Watch: which shots a changed file belongs to, decided by content, never by a timestamp.

A file whose bytes did not change (touched, copied over itself) names no shot. A shot list that changed
names the shots whose definition changed (source, range, backend, parameters, LUT...).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tasks.media import MediaError, find_sequence
from tasks.shotlist import Shot, ShotList, ShotListError, load_shotlist
from tooncrafter_model.store import sha256_file


@dataclass(frozen=True)
class Change:
    """A shot to re-render, and the file whose content changed."""

    shot: Shot
    shotlist: Path
    path: Path


def _digest(path: Path) -> str | None:
    try:
        return sha256_file(path)
    except OSError:  # gone or unreadable: a change once it is back
        return None


def _inputs(shot: Shot) -> list[Path]:
    src = shot.source
    if src.sequence is not None:
        try:
            files = list(find_sequence(shot, src.sequence).files.values())
        except MediaError:
            files = []  # nothing there yet: the render reports it
    else:
        files = [src.video] if src.video is not None else [k.image for k in src.images or ()]
    extra = [p for p in (shot.lut, shot.xsheet) if p is not None]
    return [p for p in files if p is not None] + extra


class SourceIndex:
    """The files that the shots of some shot lists read, with the content hash last seen for each."""

    def __init__(self, shotlists: Iterable[str | os.PathLike[str]], *, allow_outside_root: bool = False) -> None:
        self.allow_outside_root = allow_outside_root
        self.lists: dict[Path, ShotList] = {}
        self.hashes: dict[Path, str | None] = {}
        for path in shotlists:
            self._load(Path(path).resolve())

    def _load(self, path: Path) -> ShotList:
        shots = load_shotlist(path, allow_outside_root=self.allow_outside_root)
        self.lists[path] = shots
        for file in [path, *(f for s in shots.shots for f in _inputs(s))]:
            self.hashes.setdefault(file.resolve(), _digest(file))
        return shots

    @property
    def folders(self) -> set[Path]:
        """The folders to watch: those holding a shot list or any of its inputs."""
        return {p.parent for p in self.hashes}

    def changes(self, paths: Iterable[str | os.PathLike[str]]) -> list[Change]:
        """The shots to re-render after `paths` were written: only files whose content changed count."""
        out: dict[tuple[Path, str], Change] = {}
        for raw in paths:
            path = Path(raw).resolve()
            if path not in self.hashes:
                continue
            digest = _digest(path)
            if digest == self.hashes[path]:
                continue
            self.hashes[path] = digest
            if path in self.lists:
                out.update(self._shotlist_changed(path))
                continue
            for list_path, shots in self.lists.items():
                for shot in shots.shots:
                    if path in (f.resolve() for f in _inputs(shot)):
                        out[(list_path, shot.id)] = Change(shot, list_path, path)
        return list(out.values())

    def _shotlist_changed(self, path: Path) -> dict[tuple[Path, str], Change]:
        before = {s.id: s for s in self.lists[path].shots}
        try:
            after = self._load(path)
        except ShotListError:
            return {}  # half-saved or broken: wait for the next save; the last good list stays in force
        return {(path, s.id): Change(s, path, path) for s in after.shots if s.id not in before or before[s.id].model_dump() != s.model_dump()}


def watch_changes(index: SourceIndex, stop: threading.Event | None = None, debounce_ms: int = 800) -> Iterator[list[Change]]:
    """Yield the changes of each burst of file writes under the index's folders until `stop` is set."""
    from watchfiles import watch

    for batch in watch(*sorted(index.folders), debounce=debounce_ms, stop_event=stop, recursive=False):
        found = index.changes(path for _, path in batch)
        if found:
            yield found

