"""The shot list: which shots to in-between, from what, and how; read from YAML (or CSV) and validated.

Schema (YAML)::

    defaults:                 # optional; every shot inherits these unless it sets its own
      show: myshow            # folder-safe name (letters, digits, '.', '_', '-'); default "untitled"
      sequence: sq010         # folder-safe name; default "main"
      fps: 24                 # positive number (24, 23.976 or "24000/1001")
      backend: rife           # rife (default), toon, crossfade, simulated-gpu
      prompt: ""              # text prompt for backends that take one (toon)
      render: {seed: 0, inbetweens: null, params: {steps: 25}}   # merged key by key into each shot's
      lut: luts/show.cube     # a .cube colour LUT; default none
      colour:                 # default: neither
        palette_lock: true    # hold in-betweens to their keyframes' palette (before the LUT)
        ocio: {config: ocio/show.ocio, look: show}   # or display + view, or output; input: the
                              #   frames' colour space (default: what its file rules say of a PNG)
      deliver: [png, h264]    # the version's outputs (default): png (the sequence; {png: {first_frame: 1001}}
                              #   numbers it from 1001), h264 (MP4 for review), prores4444 (MOV for editorial)
      output: renders         # output folder for the shot; default none (the run's output root)
      priority: 0             # higher renders first (rush shots); default 0
      background: "#ffffff"   # what transparent (RGBA) line art is composited over; or [r, g, b]
      qa:                     # what to do with a pair whose in-betweens the quality scores flag
        on_fail: retry        # flag (default): record it and show it; retry: render it again with other
                              #   seeds; fallback: render it with another backend
        retries: 2            # renders with other seeds a retry may take (1-10, default 2)
        fallback: rife        # the backend to fall back to (default rife)
        thresholds: {ghost: 0.15}   # per score, over the settings' qa_thresholds
    shots:
      - code: sq010_sh0010                  # required, folder-safe, unique per show/sequence
        source: rough/sq010_sh0010.mp4      # required: a video of the rough animation...
        fps: 24                             # required unless given in defaults
        start: 12                           # optional frame range, 0-based source frames,
        end: 95                             #   both inclusive; default the whole source
      - code: sq010_sh0020
        source:                             # ...or keyframe images with their frame numbers
          images:
            - {frame: 0, image: keys/sh0020_0000.png}
            - {frame: 6, image: keys/sh0020_0006.png}
            - {frame: 12, image: keys/sh0020_0012.png}
          cuts: [12]                        # optional: frames where a new scene starts (must be images)
        end: 17                             # the last drawing is held up to `end` (default: its own frame)
        render:
          seed: 7                           # default 0
          inbetweens: 3                     # null (default): each gap gets (b - a - 1) in-betweens at the
                                            #   shot's fps; an int: every gap gets exactly that many,
                                            #   re-spacing the timeline
          params: {steps: 25, cfg: 7.5}     # free-form backend parameters
      - code: sq010_sh0030
        source: rough/sh0030.####.png       # ...or an image sequence: a pattern (#### or %04d) or a folder,
        start: 1001                         #   numbered in its file names; its gaps hold
        xsheet: sheets/sh0030.csv           # optional exposure sheet (frame, drawing): the timing, exactly

`source: [{frame: 0, image: a.png}, ...]` is short for `source: {images: [...]}`; a source string with a
frame-number pattern, or naming a folder, is short for `source: {sequence: ...}`. Relative paths are relative to
the shot list's folder; a path that leaves that folder (after resolving symlinks and '..') is refused unless
`allow_outside_root=True`. A shot's identity is `show/sequence/code`. Media files are not opened here: a
missing or unreadable source is reported per shot at detect time, so one bad shot does not stop the others.

A cut is a shot list too (`.otio`, `.edl`): one shot per clip, defaults from `CUT.otio.yaml` beside it;
see tasks/editorial.py (the one place a media file is opened here: an EDL clip's file, for its start
timecode). Its shots carry `edit`, their place in the cut. Defaults given to `load_shotlist`
(the command line's `--default`) fill what the list's own defaults leave unset.

CSV: one row per shot, a header row naming the columns `code,source,fps` and any of
`show,sequence,prompt,backend,seed,inbetweens,lut,output,priority,start,end,xsheet,background,deliver`
(formats separated by spaces: `png prores4444`); an empty cell means the default. A byte-order mark (a spreadsheet's "CSV UTF-8") is not part of the first column.

`Limits` (tasks/settings.py) are checked here, before anything is built from the file: its size, YAML
nodes with aliases expanded, name length (names match in full: no trailing newline), fps, frame numbers,
a range's length, in-betweens. Each shot carries them on to its media (`Shot.limits`).

Every problem raises `ShotListError`, one line per problem naming the file and the field, e.g.
`shots.yaml: shots[2].fps: must be a positive number (got 'abc')`; the first line alone is complete.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from tasks.colour import OcioTransform
from tasks.deliver import DEFAULT_DELIVER, DeliverSpec, DeliveryError, check_deliver
from tasks.editorial import CUT_SUFFIXES, CutError, Edit, read_cut, sidecar_of
from tasks.settings import Limits
from tooncrafter_model.backend import BACKENDS, DEFAULT_BACKEND, check_params
from tooncrafter_model.errors import UserError
from tooncrafter_model.quality import SCORES, QAThresholds


class ShotListError(UserError):
    """A shot list that cannot be used; the message names the file and the field, one line per problem."""


def _bad(message: str) -> PydanticCustomError:
    # Braces would be read as template fields by pydantic; our messages never need them.
    return PydanticCustomError("shotlist", message.replace("{", "(").replace("}", ")"))


# ----------------------------------------------------------------------------- field types

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _limits(info: ValidationInfo) -> Limits:
    limits = (info.context or {}).get("limits")
    return limits if isinstance(limits, Limits) else Limits()


def _name(value: Any, info: ValidationInfo) -> str:
    # fullmatch: with match() and "$", "sh010\n" passed and became a folder name with a newline in it.
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise _bad("must be a folder-safe name: letters, digits, '.', '_' or '-', not starting with '.'")
    longest = _limits(info).max_name_length
    if len(value) > longest:
        raise _bad(f"must be at most {longest} characters (setting limits.max_name_length)")
    return value


def _fps(value: Any, info: ValidationInfo) -> float:
    try:
        if isinstance(value, bool):
            raise TypeError
        fps = float(Fraction(value.strip())) if isinstance(value, str) else float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        raise _bad("must be a positive number") from None
    if not math.isfinite(fps) or fps <= 0:
        raise _bad("must be a positive number")
    limits = _limits(info)
    if not limits.min_fps <= fps <= limits.max_fps:
        raise _bad(f"must be between {limits.min_fps:g} and {limits.max_fps:g} fps (settings limits.min_fps, limits.max_fps)")
    return fps


def _frame(value: int, info: ValidationInfo) -> int:
    highest = _limits(info).max_frame
    if value > highest:
        raise _bad(f"must be at most {highest} (setting limits.max_frame)")
    return value


def _inbetweens(value: int | None, info: ValidationInfo) -> int | None:
    most = _limits(info).max_inbetweens
    if value is not None and value > most:
        raise _bad(f"must be at most {most} (setting limits.max_inbetweens)")
    return value


def _colour(value: Any) -> tuple[int, int, int]:
    """A colour as "#rrggbb" or [r, g, b] (0-255)."""
    if isinstance(value, str) and re.fullmatch(r"#[0-9A-Fa-f]{6}", value):
        return (int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16))
    if (
        isinstance(value, (list, tuple))
        and len(value) == 3
        and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in value)
    ):
        return (int(value[0]), int(value[1]), int(value[2]))
    raise _bad("must be a colour: \"#rrggbb\" or [r, g, b] with values 0-255")


def _backend(value: Any) -> str:
    if not isinstance(value, str) or value not in BACKENDS:
        raise _bad(f"unknown backend; choose one of {', '.join(sorted(BACKENDS))}")
    return str(value)


def _deliver(value: Any) -> tuple[DeliverSpec, ...]:
    try:
        return check_deliver(value)
    except DeliveryError as exc:
        raise _bad(str(exc)) from None


def _path(value: Path, info: ValidationInfo) -> Path:
    """Resolve a path against the shot list's folder and refuse one that leaves it (unless allowed)."""
    context = info.context or {}
    root: Path | None = context.get("root")
    if root is None:
        return value
    try:
        resolved = (root / value).resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop (RuntimeError before Python 3.13)
        raise _bad(f"cannot resolve the path: {exc}") from None
    if not context.get("allow_outside_root") and not resolved.is_relative_to(root):
        raise _bad(f"leaves the shot list's folder {root}; allow_outside_root=True (--allow-outside-root) permits it")
    return resolved


Name = Annotated[str, BeforeValidator(_name)]
ListPath = Annotated[Path, AfterValidator(_path)]
Fps = Annotated[float, BeforeValidator(_fps)]
Backend = Annotated[str, BeforeValidator(_backend)]
FrameIndex = Annotated[int, Field(ge=0), AfterValidator(_frame)]
Inbetweens = Annotated[int | None, Field(ge=0), AfterValidator(_inbetweens)]
Background = Annotated[tuple[int, int, int], BeforeValidator(_colour)]
# The shot DB keeps a seed in a signed 64-bit column, and numpy's generators refuse negative seeds.
Seed = Annotated[int, Field(ge=0, le=(1 << 63) - 1)]
Deliver = Annotated[tuple[DeliverSpec, ...], BeforeValidator(_deliver)]

# An image-sequence pattern: "sh010.####.png" (one '#' per digit) or printf's "sh010.%04d.png".
SEQUENCE_PATTERN = re.compile(r"#+|%0?(\d*)d")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ----------------------------------------------------------------------------- records


class KeyImage(_Model):
    """One keyframe image of an image-source shot, at its 0-based frame number."""

    frame: FrameIndex
    image: ListPath


class Source(_Model):
    """Where the drawings come from (exactly one): a video of the rough animation, an image sequence (a
    folder, or a pattern like `rough/sh010.####.png`: every frame or only the changed drawings, numbered in
    the file names), or keyframe images with their frame numbers."""

    video: ListPath | None = None
    sequence: ListPath | None = None
    images: tuple[KeyImage, ...] | None = None
    cuts: tuple[FrameIndex, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, (str, os.PathLike)):
            text = os.fspath(value)
            is_sequence = SEQUENCE_PATTERN.search(Path(text).name) or text.endswith(("/", os.sep))
            return {"sequence": value} if is_sequence else {"video": value}
        if isinstance(value, list):
            return {"images": value}
        if not isinstance(value, dict):
            raise _bad("must be a video path, an image sequence, a list of {frame, image} keyframe images, or {images, cuts}")
        return value

    @field_validator("images")
    @classmethod
    def _frames_increase(cls, images: tuple[KeyImage, ...] | None) -> tuple[KeyImage, ...] | None:
        if images is None:
            return None
        if not images:
            raise _bad("must list at least one keyframe image")
        frames = [k.frame for k in images]
        if frames != sorted(set(frames)):
            raise _bad(f"frame numbers must increase strictly, got {frames}")
        return images

    @field_validator("cuts")
    @classmethod
    def _cuts_on_images(cls, cuts: tuple[int, ...], info: ValidationInfo) -> tuple[int, ...]:
        if not cuts:
            return cuts
        if "images" not in info.data:
            return cuts  # the images themselves were bad; that error is reported already
        images = info.data["images"]
        if images is None:
            raise _bad("explicit cuts are only for image sources (a video's cuts are detected)")
        frames = {k.frame for k in images}
        missing = [c for c in cuts if c not in frames]
        if missing:
            raise _bad(f"a cut must start on a keyframe image; no image at frame(s) {missing}")
        return tuple(sorted(set(cuts)))

    @model_validator(mode="after")
    def _exactly_one(self) -> Source:
        if sum(x is not None for x in (self.video, self.sequence, self.images)) != 1:
            raise _bad("give either a video, an image sequence or keyframe images")
        if self.video is not None and self.video.is_dir():
            return self.model_copy(update={"video": None, "sequence": self.video})  # a folder of frames
        if self.sequence is not None:
            name = self.sequence.name
            if len(SEQUENCE_PATTERN.findall(name)) > 1:
                raise _bad("a sequence pattern holds one frame number (#### or %04d)")
        return self

    @property
    def kind(self) -> Literal["video", "sequence", "images"]:
        """"video", "sequence" or "images"."""
        return "video" if self.video is not None else "sequence" if self.sequence is not None else "images"


def _ocio_paths(ocio: OcioTransform, info: ValidationInfo) -> OcioTransform:
    return ocio.model_copy(update={"config": _path(ocio.config, info)})


class Colour(_Model):
    """Colour beyond the show LUT: palette lock of the in-betweens, and the show's OpenColorIO transform."""

    palette_lock: bool = False
    ocio: Annotated[OcioTransform, AfterValidator(_ocio_paths)] | None = None


def _thresholds(given: dict[str, float]) -> dict[str, float]:
    try:
        replace(QAThresholds(), **given)
    except TypeError:
        unknown = sorted(set(given) - {f.name for f in fields(QAThresholds)})
        raise _bad(f"unknown score {', '.join(unknown)}; the scores are {', '.join(SCORES)}") from None
    except UserError as exc:
        raise _bad(str(exc).removeprefix("QAThresholds.")) from None
    return given


class QA(_Model):
    """What the farm does with a pair whose in-betweens the quality scores flag (ARCHITECTURE.md,
    "Quality control"): flag it (record it, show it on the dashboard, keep it), retry it with other
    seeds (derived from the pair, so a re-run makes the same tries), or render it with `fallback`. A
    flagged pair that no try makes clean keeps its least flagged try."""

    on_fail: Literal["flag", "retry", "fallback"] = "flag"
    retries: int = Field(2, ge=1, le=10)
    fallback: Backend = DEFAULT_BACKEND
    thresholds: Annotated[dict[str, float], AfterValidator(_thresholds)] = Field(default_factory=dict)


class RenderParams(_Model):
    """How a shot's pairs are rendered: seed, in-betweens per gap, and free-form backend parameters."""

    seed: Seed = 0
    inbetweens: Inbetweens = None
    params: dict[str, Any] = Field(default_factory=dict)


class Shot(_Model):
    """One shot of the list, with every default filled in and every path absolute."""

    code: Name
    show: Name = "untitled"
    sequence: Name = "main"
    source: Source
    fps: Fps
    start: FrameIndex | None = None
    end: FrameIndex | None = None
    prompt: str = ""
    backend: Backend = DEFAULT_BACKEND
    render: RenderParams = Field(default_factory=RenderParams)
    lut: ListPath | None = None
    colour: Colour = Field(default_factory=Colour)
    output: ListPath | None = None
    priority: int = 0
    sketches: tuple[KeyImage, ...] = ()  # sketch guidance (toon): drawings of in-between frames
    edit: Edit | None = None  # where the shot sat in the cut it was read from (tasks/editorial.py)
    xsheet: ListPath | None = None  # an exposure sheet (CSV: frame, drawing): the timing, exactly
    background: Background = (255, 255, 255)  # what transparent line art is composited over
    deliver: Deliver = tuple(DeliverSpec(kind=k) for k in DEFAULT_DELIVER)  # the version's outputs (tasks/deliver/)
    qa: QA = Field(default_factory=QA)

    # Set by load_shotlist, so per-shot errors at detect time can name the file and the field.
    _origin: str = PrivateAttr(default="")  # "shots.yaml: shots[1]" or "shots.csv: line 3"
    _sep: str = PrivateAttr(default=".")  # between origin and field: "." (YAML) or ": " (CSV)
    _root: Path | None = PrivateAttr(default=None)
    _limits: Limits = PrivateAttr(default_factory=Limits)  # the limits it was loaded under, for its media

    @property
    def limits(self) -> Limits:
        """The limits this shot's media are held to (those it was loaded under)."""
        return self._limits

    @field_validator("end")
    @classmethod
    def _end_after_start(cls, end: int | None, info: ValidationInfo) -> int | None:
        start = info.data.get("start")
        if end is not None and start is not None and end < start:
            raise _bad(f"must not come before start ({start})")
        source = info.data.get("source")
        if end is not None and start is None and source is not None and source.images:
            start = source.images[0].frame
        longest = _limits(info).max_shot_frames
        if end is not None and start is not None and end - start + 1 > longest:
            raise _bad(f"the range {start}-{end} is over {longest} frames (setting limits.max_shot_frames)")
        return end

    @field_validator("render")
    @classmethod
    def _params_for_backend(cls, render: RenderParams, info: ValidationInfo) -> RenderParams:
        backend = info.data.get("backend")
        if backend is not None:
            try:
                check_params(backend, render.params)
            except ValueError as exc:
                raise _bad(str(exc)) from None
        return render

    @field_validator("qa")
    @classmethod
    def _fallback_elsewhere(cls, qa: QA, info: ValidationInfo) -> QA:
        backend = info.data.get("backend")
        if qa.on_fail == "fallback" and qa.fallback == backend:
            raise _bad(f"fallback {backend} is the shot's own backend; fall back to another one")
        return qa

    @field_validator("sketches")
    @classmethod
    def _sketch_backend(cls, sketches: tuple[KeyImage, ...], info: ValidationInfo) -> tuple[KeyImage, ...]:
        backend = info.data.get("backend")
        if sketches and backend is not None and not BACKENDS[backend].sketches:
            raise _bad(f"the {backend} backend takes no sketch guidance (use backend: toon)")
        return sketches

    @field_validator("xsheet")
    @classmethod
    def _xsheet_times_frames(cls, xsheet: Path | None, info: ValidationInfo) -> Path | None:
        source = info.data.get("source")
        if xsheet is not None and source is not None and source.kind == "images":
            raise _bad("an exposure sheet times a video or an image sequence, not keyframe images")
        if xsheet is not None and xsheet.suffix.lower() != ".csv":
            raise _bad("must be a .csv exposure sheet (columns frame, drawing)")
        return xsheet

    @field_validator("lut")
    @classmethod
    def _cube(cls, lut: Path | None) -> Path | None:
        if lut is not None and lut.suffix.lower() != ".cube":
            raise _bad("must be a .cube LUT file")
        return lut

    @property
    def id(self) -> str:
        """The shot's identity: "show/sequence/code"."""
        return f"{self.show}/{self.sequence}/{self.code}"

    def where(self, field: str) -> str:
        """The message prefix naming this shot's `field` in its shot list, e.g. "shots.yaml: shots[1].source"."""
        if not self._origin:
            return f"shot {self.id}: {field}"
        return f"{self._origin}{self._sep}{field}"

    def shown(self, path: Path) -> str:
        """`path` as the shot list's author wrote it: relative to the shot list's folder when inside it."""
        if self._root is not None and path.is_relative_to(self._root):
            return path.relative_to(self._root).as_posix()
        return str(path)


class _RenderDefaults(_Model):
    seed: Seed | None = None
    inbetweens: Inbetweens = None
    params: dict[str, Any] | None = None


class _Defaults(_Model):
    """The defaults block: the inheritable shot fields, each optional, validated where they are written."""

    show: Name | None = None
    sequence: Name | None = None
    fps: Fps | None = None
    prompt: str | None = None
    backend: Backend | None = None
    render: _RenderDefaults | None = None
    lut: ListPath | None = None
    # Validated per shot, after merging with the shot's own: an OCIO config here and a look in a shot
    # make one transform.
    colour: dict[str, Any] | None = None
    output: ListPath | None = None
    priority: int | None = None
    background: Background | None = None
    deliver: Deliver | None = None
    qa: dict[str, Any] | None = None  # validated per shot, after merging with the shot's own


class _File(_Model):
    defaults: dict[str, Any] | None = None
    shots: list[Any]

    @field_validator("shots")
    @classmethod
    def _not_empty(cls, shots: list[Any]) -> list[Any]:
        if not shots:
            raise _bad("must list at least one shot")
        return shots


@dataclass(frozen=True)
class ShotList:
    """A validated shot list: its file, the folder its paths are relative to, and its shots in file order."""

    path: Path
    root: Path
    shots: tuple[Shot, ...]

    def ordered(self) -> list[Shot]:
        """The shots in render order: highest priority first, then file order."""
        return sorted(self.shots, key=lambda shot: -shot.priority)

    def get(self, shot_id: str) -> Shot:
        """The shot whose id ("show/sequence/code") is `shot_id`; KeyError if none."""
        for shot in self.shots:
            if shot.id == shot_id:
                return shot
        raise KeyError(shot_id)

    def select(self, refs: Sequence[str] | None) -> list[Shot]:
        """The shots in render order, or only those named in `refs` (by id, or by a code unique in the list)."""
        if refs is None:
            return self.ordered()
        wanted = set()
        for ref in refs:
            found = [s for s in self.shots if ref in (s.id, s.code)]
            if len(found) != 1:
                why = "no such shot" if not found else "several shots have this code; give show/sequence/code"
                raise ShotListError(f"{self.path}: shot {ref}: {why}")
            wanted.add(found[0].id)
        return [s for s in self.ordered() if s.id in wanted]


# ----------------------------------------------------------------------------- error messages


def _loc(parts: tuple[int | str, ...]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _lines(
    exc: ValidationError, where: Callable[[tuple[int | str, ...]], str], prefix: tuple[int | str, ...] = ()
) -> list[str]:
    """One line per pydantic error: "<where>: <message> (got <input>)"."""
    lines = []
    for err in exc.errors(include_url=False):
        loc = prefix + tuple(err["loc"])
        if err["type"] == "missing":
            msg = "required"
        elif err["type"] == "extra_forbidden":
            msg = "unknown field"
        else:
            msg = err["msg"][:1].lower() + err["msg"][1:]
            value = err.get("input")
            if isinstance(value, (str, int, float, bool)) or value is None:
                shown = repr(value)
                msg += f" (got {shown if len(shown) <= 60 else shown[:57] + '...'})"
        lines.append(f"{where(loc)}: {msg}")
    return lines


# ----------------------------------------------------------------------------- loading


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key written twice in one mapping (PyYAML silently keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _expanded_nodes(node: yaml.Node, most: int) -> int:
    """How many nodes `node` stands for once every alias is expanded, counting no further than `most`.

    PyYAML shares an aliased node instead of copying it, so a 1 KB "billion laughs" file loads quickly and
    then takes gigabytes when anything walks it; each distinct node is sized once here.
    """
    sizes: dict[int, int] = {}

    def size(n: yaml.Node) -> int:
        if id(n) in sizes:
            return sizes[id(n)]
        sizes[id(n)] = most + 1  # a node that contains itself is refused as too big
        total = 1
        if isinstance(n, yaml.SequenceNode):
            children: list[yaml.Node] = list(n.value)
        elif isinstance(n, yaml.MappingNode):
            children = [part for pair in n.value for part in pair]
        else:
            children = []
        for child in children:
            total += size(child)
            if total > most:
                break
        sizes[id(n)] = total = min(total, most + 1)
        return total

    return size(node)


def _parse_yaml(name: str, text: str, limits: Limits) -> Any:
    loader = _UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None and _expanded_nodes(node, limits.max_yaml_nodes) > limits.max_yaml_nodes:
            raise ShotListError(
                f"{name}: over {limits.max_yaml_nodes} YAML nodes once aliases are expanded "
                "(setting limits.max_yaml_nodes)"
            )
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise ShotListError(f"{name}: {at}YAML syntax error: {problem}") from None
    finally:
        loader.dispose()
    return data


def _read_yaml(name: str, text: str, limits: Limits) -> tuple[dict[str, Any], list[Any]]:
    data = _parse_yaml(name, text, limits)
    if not isinstance(data, dict):
        got = "an empty file" if data is None else type(data).__name__
        raise ShotListError(f"{name}: must be a mapping with a 'shots' list (got {got})")
    try:
        top = _File.model_validate(data)
    except ValidationError as exc:
        raise ShotListError("\n".join(_lines(exc, lambda loc: f"{name}: {_loc(loc)}"))) from None
    return top.defaults or {}, top.shots


class _Sidecar(_Model):
    defaults: dict[str, Any]


def _read_defaults(name: str, text: str, limits: Limits) -> dict[str, Any]:
    """A cut's sidecar: a mapping holding only `defaults:`."""
    data = _parse_yaml(name, text, limits)
    if not isinstance(data, dict):
        got = "an empty file" if data is None else type(data).__name__
        raise ShotListError(f"{name}: must be a mapping with a 'defaults' block (got {got})")
    try:
        return _Sidecar.model_validate(data).defaults
    except ValidationError as exc:
        raise ShotListError("\n".join(_lines(exc, lambda loc: f"{name}: {_loc(loc)}"))) from None


_CSV_COLUMNS = ("code", "source", "fps", "show", "sequence", "prompt", "backend", "seed", "inbetweens",
                "lut", "output", "priority", "start", "end", "xsheet", "background", "deliver")  # fmt: skip
_CSV_RENDER = ("seed", "inbetweens")


def _read_csv(name: str, text: str) -> tuple[list[Any], list[int]]:
    """Rows as shot dicts (empty cells left out) and the line each row ends on."""
    reader = csv.DictReader(io.StringIO(text, newline=""), restkey="\0extra", skipinitialspace=True, strict=True)
    try:
        header = reader.fieldnames or []
        unknown = [c for c in header if c not in _CSV_COLUMNS]
        if unknown:
            raise ShotListError(f"{name}: line 1: unknown column {unknown[0]!r} (columns: {', '.join(_CSV_COLUMNS)})")
        for column in ("code", "source", "fps"):
            if column not in header:
                raise ShotListError(f"{name}: line 1: missing column {column!r}")
        shots, lines = [], []
        for row in reader:
            if "\0extra" in row or None in row.values():
                raise ShotListError(f"{name}: line {reader.line_num}: expected {len(header)} cells")
            cells = {k: v.strip() for k, v in row.items() if v.strip()}
            shot: dict[str, Any] = {k: v for k, v in cells.items() if k not in _CSV_RENDER}
            if "deliver" in shot:
                shot["deliver"] = shot["deliver"].split()
            render = {k: v for k, v in cells.items() if k in _CSV_RENDER}
            if render:
                shot["render"] = render
            shots.append(shot)
            lines.append(reader.line_num)
    except csv.Error as exc:
        # The reader counts only the lines of rows it finished; the bad row starts on the next line.
        raise ShotListError(f"{name}: line {reader.line_num + 1}: CSV syntax error: {exc}") from None
    if not shots:
        raise ShotListError(f"{name}: shots: must list at least one shot")
    return shots, lines


def _read_cut(
    name: str, text: str, suffix: str, file: Path, context: dict[str, Any], given: dict[str, Any]
) -> tuple[dict[str, Any], list[Any], list[str]]:
    """A cut's defaults (`given`, then its sidecar's, validated there), its clips as shot rows, and their labels."""
    sidecar = sidecar_of(file)
    defaults: dict[str, Any] = {}
    if sidecar.is_file():
        try:
            side = sidecar.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ShotListError(f"{sidecar}: cannot read the cut's defaults: {exc}") from None
        defaults = _read_defaults(str(sidecar), side, context["limits"])
        try:
            _Defaults.model_validate(defaults, context=context)
        except ValidationError as exc:
            raise ShotListError("\n".join(_lines(exc, lambda loc: f"{sidecar}: {_loc(loc)}", ("defaults",)))) from None
    defaults = _merge(given, defaults)
    try:
        cut = read_cut(name, text, suffix, file.resolve().parent, defaults.get("fps"))
    except CutError as exc:
        raise ShotListError(str(exc)) from None
    return defaults, list(cut.shots), cut.labels


def _as_written(loc: tuple[int | str, ...], raw: dict[str, Any]) -> tuple[int | str, ...]:
    """Drop the implied `video`/`images` step from an error's location when the source used the shorthand."""
    if loc[2:4] in (("source", "video"), ("source", "images")) and not isinstance(raw.get("source"), dict):
        return loc[:3] + loc[4:]
    return loc


def load_shotlist(
    path: str | os.PathLike[str],
    *,
    allow_outside_root: bool = False,
    defaults: Mapping[str, Any] | None = None,
    limits: Limits = Limits(),
) -> ShotList:
    """Read and validate a YAML, CSV, OTIO or EDL shot list; raise ShotListError (one line per problem) if
    it is bad. `defaults` (the command line's) fill what the list's own defaults leave unset.

    `limits` bound the file's size, its YAML aliases, names, frame numbers, fps and in-betweens; the shots
    carry them on to their media (`Shot.limits`).
    """
    name = os.fspath(path)
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix not in (".yaml", ".yml", ".csv", *CUT_SUFFIXES):
        raise ShotListError(f"{name}: a shot list must be a .yaml, .yml, .csv, .otio or .edl file")
    try:
        size = file.stat().st_size
        if size > limits.max_shotlist_bytes:
            raise ShotListError(
                f"{name}: {size} bytes, over the limit of {limits.max_shotlist_bytes} (setting limits.max_shotlist_bytes)"
            )
        # utf-8-sig: a spreadsheet's "CSV UTF-8" export starts with a byte-order mark, which is not a column name.
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ShotListError(f"{name}: cannot read shot list: {reason}") from None
    root = file.resolve().parent
    context = {"root": root, "allow_outside_root": allow_outside_root, "limits": limits}
    given = dict(defaults or {})
    try:
        _Defaults.model_validate(given, context=context)
    except ValidationError as exc:
        raise ShotListError("\n".join(_lines(exc, lambda loc: f"{name}: --default {_loc(loc)}"))) from None

    if suffix in CUT_SUFFIXES:
        defaults, raw_shots, labels = _read_cut(name, text, suffix, file, context, given)
        sep = ": "

        def label(i: int) -> str:
            return labels[i]

        def where(loc: tuple[int | str, ...]) -> str:
            return f"{name}: {label(int(loc[1]))}" + (f": {_loc(loc[2:])}" if loc[2:] else "")
    elif suffix == ".csv":
        raw_shots, csv_lines = _read_csv(name, text)
        defaults = given
        sep = ": "

        def label(i: int) -> str:
            return f"line {csv_lines[i]}"

        def where(loc: tuple[int | str, ...]) -> str:
            fields = loc[2:]
            if fields[:1] == ("render",) and len(fields) > 1:
                fields = fields[1:]  # CSV's seed/inbetweens columns live under render
            return f"{name}: {label(int(loc[1]))}" + (f": {_loc(fields)}" if fields else "")
    else:
        defaults, raw_shots = _read_yaml(name, text, limits)
        sep = "."

        def label(i: int) -> str:
            return f"shots[{i}]"

        def where(loc: tuple[int | str, ...]) -> str:
            return f"{name}: {_loc(loc)}"

        try:
            _Defaults.model_validate(defaults, context=context)
        except ValidationError as exc:
            raise ShotListError("\n".join(_lines(exc, where, ("defaults",)))) from None
        defaults = _merge(given, defaults)

    shots: list[Shot] = []
    errors: list[str] = []
    first_at: dict[str, int] = {}
    for i, raw in enumerate(raw_shots):
        if not isinstance(raw, dict):
            errors.append(f"{where(('shots', i))}: must be a mapping of shot fields (got {type(raw).__name__})")
            continue
        try:
            shot = Shot.model_validate(_merge(defaults, raw), context=context)
        except ValidationError as exc:
            errors.extend(_lines(exc, lambda loc: where(_as_written(loc, raw)), ("shots", i)))
            continue
        shot._origin, shot._sep, shot._root, shot._limits = f"{name}: {label(i)}", sep, root, limits
        if shot.id in first_at:
            first = label(first_at[shot.id])
            errors.append(f"{where(('shots', i, 'code'))}: duplicate shot {shot.id!r} (first at {first})")
            continue
        first_at[shot.id] = i
        shots.append(shot)
    if errors:
        raise ShotListError("\n".join(errors))
    return ShotList(path=file.resolve(), root=root, shots=tuple(shots))
