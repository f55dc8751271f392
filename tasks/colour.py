"""Show looks: `.cube` LUTs (Adobe/Resolve) read, written and applied to uint8 RGB frames; a show's
OpenColorIO transform; and the stylize step that puts them together with palette lock.

Table layout in memory: a 3D table is (N, N, N, 3) indexed [r, g, b]; a 1D table is (N, 3). In the
file, red changes fastest (then green, then blue), so the data block reshapes to [b, g, r].

Trilinear interpolation is evaluated as three stages of lerps in float32 (along r, then g, then b).
Every path (per-pixel, baked 256^3 lookup) does the same operations in the same order, so they agree
bit for bit.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError

from tasks.palette import Palette, PaletteLock, key_palette, palette_lock
from tooncrafter_model.errors import UserError
from tooncrafter_model.frames import Frame, check_frame, read_frame
from tooncrafter_model.store import atomic_write

Rgb = tuple[float, float, float]
MAX_3D_SIZE = 256  # Adobe's cube spec limits
MAX_1D_SIZE = 65536
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_DATA_LINE = re.compile(rf"({_NUMBER})\s+({_NUMBER})\s+({_NUMBER})")
_TITLE_LINE = re.compile(r'TITLE\s+"([^"]*)"\s*(?:#.*)?')
_KEYWORDS = (
    "TITLE", "LUT_1D_SIZE", "LUT_3D_SIZE", "DOMAIN_MIN", "DOMAIN_MAX", "LUT_1D_INPUT_RANGE", "LUT_3D_INPUT_RANGE"
)


class LutError(UserError):
    """A `.cube` file that cannot be used; the message names the file and the line or field."""


# ---------------------------------------------------------------------------------------------- the LUT


@dataclass(frozen=True, eq=False)
class Lut:
    """A parsed 1D or 3D LUT: table (see module doc), input domain per channel, title."""

    table: np.ndarray
    domain_min: Rgb = (0.0, 0.0, 0.0)
    domain_max: Rgb = (1.0, 1.0, 1.0)
    title: str = ""

    def __post_init__(self) -> None:
        table = np.array(self.table, dtype=np.float64)  # private, read-only copy
        if not (table.ndim == 2 and table.shape[1] == 3 or table.ndim == 4 and table.shape[3] == 3):
            raise LutError(f"LUT table must be (N, 3) or (N, N, N, 3), got {table.shape}")
        if table.ndim == 4 and not table.shape[0] == table.shape[1] == table.shape[2]:
            raise LutError(f"3D LUT table must be cubic, got {table.shape}")
        if not 2 <= table.shape[0] <= (MAX_3D_SIZE if table.ndim == 4 else MAX_1D_SIZE):
            raise LutError(f"LUT size {table.shape[0]} out of range")
        if not np.isfinite(table).all():
            raise LutError("LUT table has non-finite values")
        if len(self.domain_min) != 3 or len(self.domain_max) != 3:
            raise LutError(f"LUT domain needs 3 values per end, got {self.domain_min} and {self.domain_max}")
        if any(lo >= hi for lo, hi in zip(self.domain_min, self.domain_max)):
            raise LutError(f"LUT domain min {self.domain_min} must be below max {self.domain_max} per channel")
        table.flags.writeable = False
        object.__setattr__(self, "table", table)
        object.__setattr__(self, "domain_min", tuple(float(v) for v in self.domain_min))
        object.__setattr__(self, "domain_max", tuple(float(v) for v in self.domain_max))

    @property
    def dims(self) -> int:
        """1 for a per-channel curve, 3 for a cube."""
        return 3 if self.table.ndim == 4 else 1

    @property
    def size(self) -> int:
        """Lattice points per axis."""
        return int(self.table.shape[0])

    @property
    def sha256(self) -> str:
        """Content hash: dims, size, domain and values; comments, title and number formatting don't count."""
        h = hashlib.sha256(f"cube:{self.dims}D:{self.size}:{self.domain_min}:{self.domain_max}:".encode())
        h.update(np.ascontiguousarray(self.table, dtype="<f8").tobytes())
        return h.hexdigest()

    @functools.cached_property
    def _axes(self) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
        """Per channel, for each uint8 input value: lower lattice index (int32) and weight (float32)."""
        n = self.size
        axes = []
        for c in range(3):
            x = (np.arange(256) / 255.0 - self.domain_min[c]) / (self.domain_max[c] - self.domain_min[c])
            x = np.clip(x * (n - 1), 0.0, n - 1)
            lo = np.minimum(np.floor(x).astype(np.int32), n - 2)
            axes.append((lo, (x - lo).astype(np.float32)))
        return tuple(axes)

    @functools.cached_property
    def _table32(self) -> np.ndarray:
        return self.table.astype(np.float32)

    @functools.cached_property
    def _curves(self) -> np.ndarray:
        """1D LUT only: (256, 3) uint8 output for every input value of each channel."""
        t = self._table32
        out = np.empty((256, 3), np.uint8)
        for c, (lo, w) in enumerate(self._axes):
            out[:, c] = _quantize(_lerp(t[lo, c], t[lo + 1, c], w))
        return out


def _lerp(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    # The one formula every path uses, so all paths round identically.
    out: np.ndarray = a * (1.0 - w) + b * w
    return out


def _quantize(x: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(x * 255.0, 0.0, 255.0)).astype(np.uint8)


# ----------------------------------------------------------------------------------------- application


def apply_lut(frame: Frame, lut: Lut) -> Frame:
    """Apply `lut` to an HxWx3 uint8 RGB frame: per-channel curves (1D) or trilinear lookup (3D)."""
    frame = check_frame(frame)
    if lut.dims == 1:
        curves = lut._curves
        return np.stack([curves[frame[..., c], c] for c in range(3)], axis=-1)
    n = lut.size
    (lo_r, w_r), (lo_g, w_g), (lo_b, w_b) = lut._axes
    r, g, b = frame[..., 0], frame[..., 1], frame[..., 2]
    base = ((lo_r * (n * n))[r] + (lo_g * n)[g] + lo_b[b]).ravel()  # flat lattice index of each (r0, g0, b0)
    wr, wg, wb = (w[c].reshape(-1, 1) for w, c in ((w_r, r), (w_g, g), (w_b, b)))
    t = lut._table32.reshape(-1, 3)  # [(r * n + g) * n + b]

    def along_r(offset: int) -> np.ndarray:
        return _lerp(np.take(t, base + offset, axis=0), np.take(t, base + (offset + n * n), axis=0), wr)

    def along_rg(offset: int) -> np.ndarray:
        return _lerp(along_r(offset), along_r(offset + n), wg)

    return _quantize(_lerp(along_rg(0), along_rg(1), wb)).reshape(frame.shape)


class BakedLut:
    """A LUT evaluated once for all 256^3 inputs (64 MiB, about 0.5 s): then one gather per frame.

    Bit-identical to `apply_lut`; worth it when many frames or large frames go through one LUT.
    """

    def __init__(self, lut: Lut) -> None:
        self.lut = lut
        self._rgbx = _bake(lut)  # (256^3,) uint32, index r<<16 | g<<8 | b, value r | g<<8 | b<<16

    def __call__(self, frame: Frame) -> Frame:
        """The frame after the LUT."""
        f = check_frame(frame).astype(np.uint32)
        key = (f[..., 0] << 16) | (f[..., 1] << 8) | f[..., 2]
        out = self._rgbx[key].view(np.uint8).reshape(*frame.shape[:2], 4)  # little-endian: r, g, b, 0
        return np.ascontiguousarray(out[..., :3])


def _bake(lut: Lut) -> np.ndarray:
    rgbx = np.empty((256, 256, 256), np.uint32)  # [r, g, b]
    if lut.dims == 1:
        q = lut._curves.astype(np.uint32)
        rgbx[:] = q[:, None, None, 0] | (q[None, :, None, 1] << 8) | (q[None, None, :, 2] << 16)
        return rgbx.reshape(-1)
    (lo_r, w_r), (lo_g, w_g), (lo_b, w_b) = lut._axes
    t = lut._table32
    wg, wb = w_g[:, None, None], w_b[None, :, None]
    for v in range(256):  # one red value per step keeps the float temporaries at ~1 MiB
        plane = _lerp(t[lo_r[v]], t[lo_r[v] + 1], w_r[v])  # (N, N, 3) over [g, b]
        rows = _lerp(plane[lo_g], plane[lo_g + 1], wg)  # (256, N, 3) over [g value, b]
        q = _quantize(_lerp(rows[:, lo_b], rows[:, lo_b + 1], wb)).astype(np.uint32)  # (256, 256, 3)
        rgbx[v] = q[..., 0] | (q[..., 1] << 8) | (q[..., 2] << 16)
    return rgbx.reshape(-1)


# ------------------------------------------------------------------------------------------ .cube files


def read_cube(path: str | os.PathLike[str]) -> Lut:
    """Parse a `.cube` file strictly; every problem is one LutError line naming the file and line/field."""
    p = Path(path)
    try:
        text = p.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise LutError(f"{p}: LUT file not found") from None
    except UnicodeDecodeError as e:
        raise LutError(f"{p}: not a text .cube file (byte {e.start} is not UTF-8)") from None
    except OSError as e:
        raise LutError(f"{p}: cannot read LUT file ({e.strerror})") from None

    keys: dict[str, tuple[int, str]] = {}  # keyword -> (line number, argument text)
    values: list[Rgb] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("TITLE"):
            m = _TITLE_LINE.fullmatch(line)
            if not m:
                raise LutError(f'{p}:{number}: TITLE must be a quoted string, e.g. TITLE "show look"')
            _keyword(p, number, keys, "TITLE", m.group(1), values)
            continue
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line[0].isalpha():
            word, *arg = line.split(None, 1)
            _keyword(p, number, keys, word, arg[0] if arg else "", values)
            continue
        m = _DATA_LINE.fullmatch(line)
        if not m:
            raise LutError(f"{p}:{number}: expected three numbers (R G B), got {line[:60]!r}")
        rgb = (float(m.group(1)), float(m.group(2)), float(m.group(3)))
        if not all(math.isfinite(v) for v in rgb):
            raise LutError(f"{p}:{number}: table entry out of float range: {line[:60]!r}")
        values.append(rgb)
    return _build(p, keys, values)


def _keyword(p: Path, number: int, keys: dict[str, tuple[int, str]], word: str, arg: str, values: list[Rgb]) -> None:
    if word not in _KEYWORDS:
        raise LutError(f"{p}:{number}: unknown keyword {word!r} (known: {', '.join(_KEYWORDS)})")
    if values:
        raise LutError(f"{p}:{number}: keyword {word} after the first table entry")
    if word in keys:
        raise LutError(f"{p}:{number}: {word} given twice (first on line {keys[word][0]})")
    keys[word] = (number, arg)


def _numbers(p: Path, keys: dict[str, tuple[int, str]], word: str, count: int) -> tuple[float, ...] | None:
    if word not in keys:
        return None
    number, arg = keys[word]
    parts = arg.split()
    if len(parts) != count or not all(re.fullmatch(_NUMBER, s) for s in parts):
        raise LutError(f"{p}:{number}: {word} needs {count} number(s), got {arg[:60]!r}")
    return tuple(float(s) for s in parts)


def _build(p: Path, keys: dict[str, tuple[int, str]], values: list[Rgb]) -> Lut:
    sizes = [w for w in ("LUT_1D_SIZE", "LUT_3D_SIZE") if w in keys]
    if not sizes:
        raise LutError(f"{p}: LUT_3D_SIZE (or LUT_1D_SIZE) missing")
    if len(sizes) == 2:
        line = keys["LUT_3D_SIZE"][0]
        raise LutError(f"{p}:{line}: both LUT_1D_SIZE and LUT_3D_SIZE (shaper + cube files are not supported)")
    word = sizes[0]
    dims = 3 if word == "LUT_3D_SIZE" else 1
    number, arg = keys[word]
    limit = MAX_3D_SIZE if dims == 3 else MAX_1D_SIZE
    if not re.fullmatch(r"\d+", arg) or not 2 <= int(arg) <= limit:
        raise LutError(f"{p}:{number}: {word} must be an integer from 2 to {limit}, got {arg[:60]!r}")
    n = int(arg)
    expected = n**dims
    if len(values) != expected:
        raise LutError(f"{p}:{number}: {word} {n} needs {expected} table entries, found {len(values)}")

    other = "LUT_3D_INPUT_RANGE" if dims == 1 else "LUT_1D_INPUT_RANGE"
    if other in keys:
        raise LutError(f"{p}:{keys[other][0]}: {other} in a {dims}D LUT")
    range_word = f"LUT_{dims}D_INPUT_RANGE"
    if range_word in keys and ("DOMAIN_MIN" in keys or "DOMAIN_MAX" in keys):
        raise LutError(f"{p}:{keys[range_word][0]}: give DOMAIN_MIN/DOMAIN_MAX or {range_word}, not both")
    rng = _numbers(p, keys, range_word, 2) or (0.0, 1.0)
    dmin = _numbers(p, keys, "DOMAIN_MIN", 3) or (rng[0],) * 3
    dmax = _numbers(p, keys, "DOMAIN_MAX", 3) or (rng[1],) * 3
    if any(lo >= hi for lo, hi in zip(dmin, dmax)):
        field = range_word if range_word in keys else "DOMAIN_MIN/DOMAIN_MAX"
        raise LutError(f"{p}: {field}: minimum {dmin} must be below maximum {dmax} for every channel")

    data = np.asarray(values, dtype=np.float64)
    table = data if dims == 1 else data.reshape(n, n, n, 3).transpose(2, 1, 0, 3)  # file [b, g, r] -> [r, g, b]
    title = keys["TITLE"][1] if "TITLE" in keys else ""
    return Lut(table=table, domain_min=(dmin[0], dmin[1], dmin[2]), domain_max=(dmax[0], dmax[1], dmax[2]), title=title)


def write_cube(
    path: str | os.PathLike[str],
    table: np.ndarray,
    title: str = "",
    domain_min: Rgb = (0.0, 0.0, 0.0),
    domain_max: Rgb = (1.0, 1.0, 1.0),
) -> Path:
    """Write a (N, 3) or (N, N, N, 3) [r, g, b] table as a `.cube` file, atomically; returns the path."""
    if '"' in title or "\n" in title:
        raise LutError(f"{path}: TITLE cannot contain quotes or newlines: {title!r}")
    try:
        lut = Lut(table=table, domain_min=domain_min, domain_max=domain_max, title=title)
    except LutError as e:
        raise LutError(f"{path}: {e}") from None
    data = lut.table if lut.dims == 1 else lut.table.transpose(2, 1, 0, 3).reshape(-1, 3)  # red fastest
    head = [f'TITLE "{title}"'] if title else []
    head += [f"LUT_{lut.dims}D_SIZE {lut.size}"]
    head += ["DOMAIN_MIN " + " ".join(f"{v:.6f}" for v in lut.domain_min)]
    head += ["DOMAIN_MAX " + " ".join(f"{v:.6f}" for v in lut.domain_max)]
    body = "\n".join(f"{r:.6f} {g:.6f} {b:.6f}" for r, g, b in data.tolist())
    p = Path(path)
    with atomic_write(p, "w") as f:
        f.write("\n".join(head) + "\n\n" + body + "\n")
    return p


def lut_hash(path: str | os.PathLike[str]) -> str:
    """sha256 of a `.cube` file's parsed content (see `Lut.sha256`); validates the file on the way."""
    return read_cube(path).sha256


# -------------------------------------------------------------------------------------- built-in looks


def table_from_function(fn: Callable[[np.ndarray], np.ndarray], size: int = 33, dims: int = 3) -> np.ndarray:
    """Sample `fn` (float RGB in [0, 1], shape (..., 3) -> same shape) on a LUT lattice."""
    axis = np.linspace(0.0, 1.0, size)
    if dims == 1:
        grid = np.repeat(axis[:, None], 3, axis=1)
    elif dims == 3:
        grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1)
    else:
        raise ValueError(f"dims must be 1 or 3, got {dims}")
    return np.asarray(fn(grid), dtype=np.float64)


def identity_table(size: int = 33, dims: int = 3) -> np.ndarray:
    """A table that maps every colour to itself."""
    return table_from_function(lambda rgb: rgb, size, dims)


def warm_look(rgb: np.ndarray) -> np.ndarray:
    """The demo's show look: lifted reds, slightly lifted greens, cooler shadows pulled from blue.

    Affine, so trilinear interpolation reproduces it exactly between lattice points, and it maps
    [0, 1] into [0, 1] (no clipping), which makes it a checkable reference.
    """
    out = np.empty_like(rgb, dtype=np.float64)
    out[..., 0] = 0.06 + 0.94 * rgb[..., 0]
    out[..., 1] = 0.02 + 0.96 * rgb[..., 1]
    out[..., 2] = 0.90 * rgb[..., 2]
    return out


def warm_look_table(size: int = 33) -> np.ndarray:
    """`warm_look` sampled on a 3D lattice."""
    return table_from_function(warm_look, size)


_EXAMPLE_OCIO = """ocio_profile_version: 2

search_path: luts
strictparsing: true
roles:
  default: srgb
  scene_linear: linear
displays:
  sRGB:
    - !<View> {name: Raw, colorspace: srgb}
    - !<View> {name: Show, colorspace: srgb, looks: warm}
looks:
  - !<Look>
    name: warm
    process_space: srgb
    transform: !<FileTransform> {src: warm.cube, interpolation: linear}
colorspaces:
  - !<ColorSpace>
    name: srgb
    to_scene_reference: !<ExponentWithLinearTransform> {gamma: 2.4, offset: 0.055}
  - !<ColorSpace>
    name: linear
"""


def write_example_ocio(folder: str | os.PathLike[str], table: np.ndarray | None = None) -> Path:
    """A small OCIO config in `folder/show.ocio`: colour spaces `srgb` (the default) and `linear`, a look
    `warm` read from `folder/luts/warm.cube` (`table`, default `warm_look_table(9)`), and a display
    `sRGB` with views `Raw` and `Show` (Show carries the look). For examples and tests."""
    write_cube(Path(folder) / "luts" / "warm.cube", warm_look_table(9) if table is None else table)
    config = Path(folder) / "show.ocio"
    config.write_text(_EXAMPLE_OCIO)
    return config


# --------------------------------------------------------------------------------------- OpenColorIO


class ColourError(UserError):
    """A colour setting that cannot be used (an OCIO config, a look, a colour space); one line, naming the file."""


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


class OcioTransform(BaseModel):
    """A show's OpenColorIO transform: its config file and what to apply from it to the frames.

    `input` is the frames' colour space (default: what the config's file rules say of a PNG, which is
    its `default` role when it has no rules). Then a `look`, a `display` with its `view`, an `output`
    colour space, or a look followed by either of the others.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    config: Path
    input: str | None = None
    look: str | None = None
    display: str | None = None
    view: str | None = None
    output: str | None = None

    @model_validator(mode="after")
    def _one_target(self) -> OcioTransform:
        # PydanticCustomError, not ValueError: shot list errors then read without pydantic's prefix.
        if (self.display is None) != (self.view is None):
            raise PydanticCustomError("ocio", "display and view go together: name both or neither")
        if self.display is not None and self.output is not None:
            raise PydanticCustomError("ocio", "give a display and view, or an output colour space, not both")
        if self.look is None and self.display is None and self.output is None:
            raise PydanticCustomError("ocio", "name a look, a display and view, or an output colour space")
        return self


class OcioLook:
    """An `OcioTransform` loaded: applies it to uint8 frames, and says what it does by content.

    `identity["processor"]` is OpenColorIO's cache ID of the processor, computed from its operations and
    the contents of the LUT files it reads, so an edited LUT behind an unchanged config is a new look.
    """

    def __init__(self, spec: OcioTransform) -> None:
        import PyOpenColorIO as ocio

        self.spec = spec
        where = str(spec.config)
        if not spec.config.is_file():
            raise ColourError(f"{where}: OCIO config not found")
        ocio.ClearAllCaches()  # OpenColorIO keeps files read earlier in this process; a LUT may have changed
        try:
            config = ocio.Config.CreateFromFile(str(spec.config))
        except (ocio.Exception, ocio.ExceptionMissingFile) as e:
            raise ColourError(f"{where}: not a usable OCIO config ({_first_line(e)})") from None
        spaces = [c.getName() for c in config.getColorSpaces()]
        for field, name in (("input", spec.input), ("output", spec.output)):
            if name is not None and config.getColorSpace(name) is None:
                raise ColourError(f"{where}: {field}: no colour space {name!r} (known: {', '.join(spaces)})")
        # Unnamed, the frames are what the config's file rules make of a PNG (its 'default' role if no rule).
        source = config.getCanonicalName(spec.input or config.getColorSpaceFromFilepath("frame.png")[0])
        if spec.display is not None:
            displays = list(config.getDisplays())
            if spec.display not in displays:
                raise ColourError(f"{where}: display: no display {spec.display!r} (known: {', '.join(displays)})")
            views = list(config.getViews(spec.display))
            if spec.view not in views:
                raise ColourError(f"{where}: view: display {spec.display!r} has no view {spec.view!r} (known: {', '.join(views)})")

        steps: list[Any] = []
        if spec.look is not None:
            steps.append(ocio.LookTransform(src=source, dst=spec.output or source, looks=spec.look))
        if spec.display is not None:
            steps.append(ocio.DisplayViewTransform(src=source, display=spec.display, view=spec.view))
        elif spec.output is not None and spec.look is None:
            steps.append(ocio.ColorSpaceTransform(src=source, dst=spec.output))
        try:
            processor = config.getProcessor(steps[0] if len(steps) == 1 else ocio.GroupTransform(steps))
        except (ocio.Exception, ocio.ExceptionMissingFile) as e:  # e.g. an unknown look, a LUT file missing
            raise ColourError(f"{where}: cannot build the transform ({_first_line(e)})") from None
        self._cpu = processor.getDefaultCPUProcessor()
        self.identity: dict[str, Any] = {
            "input": source, "look": spec.look, "display": spec.display, "view": spec.view, "output": spec.output,
            "processor": processor.getCacheID(),
        }

    def __call__(self, frame: Frame) -> Frame:
        """The frame through the transform, evaluated in float32 and rounded like a LUT."""
        pixels = check_frame(frame).astype(np.float32) / 255.0
        self._cpu.applyRGB(pixels)  # in place; a contiguous HxWx3 float32 array is a packed RGB image
        return _quantize(pixels)


# ------------------------------------------------------------------------------------------ stylizing


@dataclass(frozen=True)
class Stylize:
    """How a shot is colour-stylized after assembly, in this order: palette lock (in-betweens only, so
    the keyframes' own colours are what the lock holds to), the show LUT, the OCIO transform."""

    lut: Path | None = None
    palette_lock: bool = False
    ocio: OcioTransform | None = None


def stylize_identity(cfg: Stylize) -> tuple[dict[str, Any], dict[str, Any]]:
    """What stylizing does beyond the LUT (whose hash is a field of its own): for the assembly key, by
    content; for provenance, the same plus the OCIO config's path. Both empty when there is nothing, so
    the keys of versions made before palette lock and OCIO existed still hold."""
    key: dict[str, Any] = {}
    if cfg.palette_lock:
        key["palette_lock"] = PaletteLock().as_dict()
    if cfg.ocio is None:
        return key, dict(key)
    key["ocio"] = OcioLook(cfg.ocio).identity
    return key, {**key, "ocio": {"config": str(cfg.ocio.config), **key["ocio"]}}


class Stylizer:
    """A `Stylize` config loaded once and applied frame by frame.

    `expected_pixels` (all frames the caller will pass, counted once per distinct drawing) decides
    whether baking the 3D LUT pays off: baking costs about as much as 6 per-pixel 1024x576 frames.
    """

    BAKE_FROM_PIXELS = 3_000_000
    PALETTES = 4  # keyframe pairs kept: in-betweens arrive pair by pair

    def __init__(self, cfg: Stylize, *, expected_pixels: int = 0) -> None:
        self.cfg = cfg
        self.lut = read_cube(cfg.lut) if cfg.lut is not None else None
        self.lut_sha256 = self.lut.sha256 if self.lut is not None else None
        bake = self.lut is not None and self.lut.dims == 3 and expected_pixels >= self.BAKE_FROM_PIXELS
        self._baked = BakedLut(self.lut) if bake and self.lut is not None else None
        self.ocio = OcioLook(cfg.ocio) if cfg.ocio is not None else None
        self._palettes: OrderedDict[tuple[Path, Path], Palette] = OrderedDict()

    def __call__(self, frame: Frame, keys: tuple[Path, Path] | None = None) -> Frame:
        """The stylized frame (the input itself when there is nothing to do). `keys`: for an in-between,
        the two keyframe images it lies between, whose palette it is locked to."""
        if self.cfg.palette_lock and keys is not None:
            frame = palette_lock(frame, self._palette(keys))
        if self._baked is not None:
            frame = self._baked(frame)
        elif self.lut is not None:
            frame = apply_lut(frame, self.lut)
        return self.ocio(frame) if self.ocio is not None else frame

    def _palette(self, keys: tuple[Path, Path]) -> Palette:
        if keys not in self._palettes:
            self._palettes[keys] = key_palette(read_frame(keys[0]), read_frame(keys[1]))
            if len(self._palettes) > self.PALETTES:
                self._palettes.popitem(last=False)
        self._palettes.move_to_end(keys)
        return self._palettes[keys]
