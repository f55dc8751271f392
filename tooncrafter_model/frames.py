"""Frames as the backends see them: HxWx3 uint8 RGB numpy arrays, identified by their pixels.

Also the one place that decodes the images studios hand over (`read_image`): PNG, JPEG, TIFF, TGA and BMP,
8 or 16 bits, grey or colour, with or without alpha. The picture's size is read from the file's header
before anything is decoded, so a small file that claims a huge picture is refused without allocating it.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tooncrafter_model.errors import UserError
from tooncrafter_model.store import atomic_write

Frame = np.ndarray  # HxWx3, uint8, RGB


class Frames(list[Frame]):
    """The frames a backend returns, plus what it did to make them (padding, steps, dtype...)."""

    def __init__(self, frames: list[Frame] | None = None, meta: dict[str, object] | None = None) -> None:
        super().__init__(frames or [])
        self.meta: dict[str, object] = dict(meta or {})


def check_frame(frame: object, what: str = "frame") -> Frame:
    """Return `frame` if it is an HxWx3 uint8 array, else raise ValueError naming `what`."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        got = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise ValueError(f"{what} must be an HxWx3 uint8 RGB array, got {got}")
    return frame


def pixel_hash(frame: Frame) -> str:
    """sha256 of the decoded pixels and their shape: the identity of a drawing, whatever file holds it."""
    frame = np.ascontiguousarray(check_frame(frame))
    h = hashlib.sha256(f"{frame.shape[0]}x{frame.shape[1]}x3:".encode())
    h.update(frame.tobytes())
    return h.hexdigest()


def read_frame(path: str | os.PathLike[str]) -> Frame:
    """Read an image file as RGB uint8; raises ValueError naming the file when it is missing or corrupt."""
    import cv2

    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p}: image file not found")
    data = np.fromfile(p, dtype=np.uint8)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:
        raise ValueError(f"{p}: not a readable image (corrupt or unsupported format)")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def write_frame(path: str | os.PathLike[str], frame: Frame) -> Path:
    """Write `frame` as PNG atomically (temp file in the same folder, then rename)."""
    import cv2

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(check_frame(frame)), cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"{p}: PNG encoding failed")
    with atomic_write(p) as f:
        f.write(buf.tobytes())
    return p


# ----------------------------------------------------------------------------- images as studios hand them over

RGB = tuple[int, int, int]
IMAGE_FORMATS = ("PNG", "JPEG", "TIFF", "TGA", "BMP")


class ImageError(UserError):
    """An image that cannot be used; `reason` says why without the path (callers name the file their own way)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class DecodedImage:
    """An image as a frame, and what was done to make it one (for provenance)."""

    frame: Frame
    format: str  # one of IMAGE_FORMATS
    depth: int  # bits per channel in the file: 8 or 16
    channels: str  # "grey", "grey+alpha", "rgb" or "rgba"
    transparent: float  # fraction of pixels that were not fully opaque (0 without alpha)

    @property
    def conversions(self) -> list[str]:
        """What was done to the file's pixels, in words; empty for an 8-bit RGB file."""
        done = []
        if self.depth == 16:
            done.append("16-bit reduced to 8-bit")
        if self.channels.startswith("grey"):
            done.append("grey expanded to RGB")
        if self.channels.endswith("alpha") or self.channels == "rgba":
            done.append("alpha composited over the background")
        return done


def _u16(data: bytes, at: int, order: str) -> int:
    return int(struct.unpack_from(order + "H", data, at)[0])


def _u32(data: bytes, at: int, order: str) -> int:
    return int(struct.unpack_from(order + "I", data, at)[0])


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    order = "<" if data[:2] == b"II" else ">"
    if _u16(data, 2, order) != 42:
        return None  # BigTIFF (43) and anything else: not read here
    ifd = _u32(data, 4, order)
    count = _u16(data, ifd, order)
    found: dict[int, int] = {}
    for i in range(count):
        at = ifd + 2 + 12 * i
        tag, kind = _u16(data, at, order), _u16(data, at + 2, order)
        if tag in (256, 257):
            found[tag] = _u16(data, at + 8, order) if kind == 3 else _u32(data, at + 8, order)
    return (found[256], found[257]) if len(found) == 2 else None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    at = 2
    while at + 9 < len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # standalone markers carry no length
            at += 2
            continue
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            return _u16(data, at + 7, ">"), _u16(data, at + 5, ">")
        at += 2 + _u16(data, at + 2, ">")
    return None


def image_header(path: str | os.PathLike[str]) -> tuple[str, int, int]:
    """The file's format and picture size (format, width, height), read from its header alone.

    Raises ImageError for a missing file or a format other than IMAGE_FORMATS.
    """
    p = Path(path)
    try:
        with open(p, "rb") as f:
            data = f.read(1 << 16)  # JPEG metadata (EXIF, ICC) can push the frame header past the first KiB
    except FileNotFoundError:
        raise ImageError(p, "image file not found") from None
    except OSError as exc:
        raise ImageError(p, f"cannot read image: {exc.strerror or exc}") from None
    size: tuple[int, int] | None = None
    kind = ""
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
            kind, size = "PNG", (_u32(data, 16, ">"), _u32(data, 20, ">"))
        elif data[:3] == b"\xff\xd8\xff":
            kind, size = "JPEG", _jpeg_size(data)
        elif data[:4] in (b"II*\x00", b"MM\x00*"):
            kind, size = "TIFF", _tiff_size(data)
        elif data[:2] == b"BM" and len(data) >= 26:
            kind, size = "BMP", (abs(struct.unpack_from("<i", data, 18)[0]), abs(struct.unpack_from("<i", data, 22)[0]))
        elif p.suffix.lower() in (".tga", ".targa") and len(data) >= 18 and data[2] in (1, 2, 3, 9, 10, 11):
            kind, size = "TGA", (_u16(data, 12, "<"), _u16(data, 14, "<"))
    except (struct.error, IndexError):
        size = None
    if not kind:
        raise ImageError(p, f"not a readable image (supported: {', '.join(IMAGE_FORMATS)})")
    if size is None or min(size) < 1:
        raise ImageError(p, f"not a readable image (corrupt {kind} header)")
    return kind, size[0], size[1]


def _decode_tga(data: bytes, path: Path) -> np.ndarray:
    """A Truevision TGA (OpenCV reads none): uncompressed or RLE, 8-bit grey, 24-bit BGR or 32-bit BGRA."""
    id_len, cmap, kind = data[0], data[1], data[2]
    width, height, depth, descriptor = _u16(data, 12, "<"), _u16(data, 14, "<"), data[16], data[17]
    if cmap or kind in (1, 9):
        raise ImageError(path, "not a readable image (colour-mapped TGA)")
    channels = {8: 1, 24: 3, 32: 4}.get(depth)
    if channels is None or (kind in (3, 11)) != (channels == 1):
        raise ImageError(path, f"not a readable image ({depth}-bit TGA)")
    body = memoryview(data)[18 + id_len :]
    total = width * height * channels
    if kind in (2, 3):
        if len(body) < total:
            raise ImageError(path, "not a readable image (truncated TGA)")
        flat = np.frombuffer(body[:total], np.uint8)
    else:
        out = np.empty(total, np.uint8)
        src, dst = 0, 0
        while dst < total:
            if src >= len(body):
                raise ImageError(path, "not a readable image (truncated TGA)")
            head = body[src]
            n = ((head & 0x7F) + 1) * channels
            if dst + n > total:
                raise ImageError(path, "not a readable image (corrupt TGA run)")
            if head & 0x80:
                pixel = np.frombuffer(body[src + 1 : src + 1 + channels], np.uint8)
                out[dst : dst + n] = np.tile(pixel, n // channels)
                src += 1 + channels
            else:
                out[dst : dst + n] = np.frombuffer(body[src + 1 : src + 1 + n], np.uint8)
                src += 1 + n
            dst += n
        flat = out
    image = flat.reshape(height, width, channels)
    if not descriptor & 0x20:  # bottom-up rows unless the top-left origin bit is set
        image = image[::-1]
    if descriptor & 0x10:
        image = image[:, ::-1]
    if channels == 4 and not descriptor & 0x0F:
        image = image[..., :3]  # 32 bits but no alpha bits declared: the fourth byte is padding
    return np.ascontiguousarray(image[..., 0] if channels == 1 else image)


def read_image(
    path: str | os.PathLike[str], *, background: RGB = (255, 255, 255), max_pixels: int | None = None
) -> DecodedImage:
    """Read an image as an RGB uint8 frame: 16 bits are rounded to 8, grey is expanded, and alpha is
    composited over `background` (never silently dropped). The header is checked against `max_pixels` first.

    Raises ImageError naming the file: missing, unsupported format, over the pixel limit, or corrupt.
    """
    import cv2

    p = Path(path)
    kind, width, height = image_header(p)
    if max_pixels is not None and width * height > max_pixels:
        raise ImageError(p, f"{width}x{height} is over the limit of {max_pixels} pixels (setting limits.max_image_pixels)")
    data = p.read_bytes()
    if kind == "TGA":
        raw = _decode_tga(data, p)
        raw = raw[..., [2, 1, 0, 3][: raw.shape[2]]] if raw.ndim == 3 else raw  # BGR(A) -> RGB(A)
    else:
        try:
            bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        except cv2.error:  # a decoder's own refusal (its pixel cap, a corrupt stream)
            bgr = None
        if bgr is None:
            raise ImageError(p, f"not a readable image (corrupt {kind})")
        raw = bgr[..., [2, 1, 0, 3][: bgr.shape[2]]] if bgr.ndim == 3 else bgr
    if raw.shape[:2] != (height, width):
        raise ImageError(p, f"not a readable image ({kind} header says {width}x{height}, pixels are "
                            f"{raw.shape[1]}x{raw.shape[0]})")
    depth = 16 if raw.dtype == np.uint16 else 8
    top = float((1 << depth) - 1)
    if raw.ndim == 2:
        raw = raw[..., None]
    colour, alpha = raw[..., :-1] if raw.shape[2] in (2, 4) else raw, raw[..., -1] if raw.shape[2] in (2, 4) else None
    names = {1: "grey", 2: "grey+alpha", 3: "rgb", 4: "rgba"}
    transparent = 0.0
    if alpha is None and depth == 8:
        rgb = colour
    else:
        pixels = colour.astype(np.float32) / top
        if alpha is not None:
            a = alpha.astype(np.float32)[..., None] / top
            transparent = float((alpha < top).mean())
            pixels = pixels * a + np.asarray(background, np.float32) / 255.0 * (1.0 - a)
        rgb = np.clip(pixels * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if rgb.shape[2] == 1:
        rgb = np.repeat(rgb, 3, axis=2)
    return DecodedImage(np.ascontiguousarray(rgb), kind, depth, names[raw.shape[2]], transparent)
