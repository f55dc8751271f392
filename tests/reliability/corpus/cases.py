"""The reliability corpus: every bad input toonfarm has been attacked with, the input each case builds (in a
temporary folder, no binary fixtures), the one line it must produce and its exit status.

Three kinds, run by tests/reliability/test_corpus.py:

- `shotlist`: `toonfarm plan LIST` refuses the whole list: exit 2, stderr is exactly `toonfarm: <line>`.
- `command`: any other invocation (`build` returns its arguments and environment): exit `exit`; for a
  non-zero exit stderr is exactly `toonfarm: <line>`, for exit 0 one line of stdout matches `line`.
- `shot`: `build` writes the shot's media and returns its shot-list entry. Every `shot` case is one shot of
  one shared batch (`toonfarm render`, the crossfade backend) beside good shots: that shot fails with
  exactly one `error: <line>` on stderr, the good shots still publish, the batch exits 1.

`line` is a regular expression matched in full; `{list}` stands for the shot list's path and `{shot}` for
the shot's place in it (`<list>: shots[3]`), `{here}` for the folder a `shot` case's files are written in
(relative to the list: the case's id), all escaped. `origin` says where the case comes from: issue 9's
numbered findings (`#5`), or the attacks tried before it (`earlier`). Cases of crashes, kills and database
restarts run elsewhere: RELIABILITY.md lists them with their tests.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml

from tests.media import damage_frame

W, H = 64, 32
NAME = r"must be a folder-safe name: letters, digits, '\.', '_' or '-', not starting with '\.'"


@dataclass(frozen=True)
class Case:
    id: str
    origin: str
    kind: Literal["shotlist", "command", "shot"]
    build: Callable[[Path], Any]
    line: str
    exit: int = 2
    env: dict[str, str] = field(default_factory=dict)


# ----------------------------------------------------------------------------- inputs


def keyframe(path: Path, shade: int) -> Path:
    """A small drawing: a dark bar on white whose position depends on `shade`."""
    from tooncrafter_model.frames import write_frame

    frame = np.full((H, W, 3), 255, np.uint8)
    x = 4 + shade % (W - 12)
    frame[8:24, x : x + 8] = (20, 20, 20)
    return write_frame(path, frame)


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims `width`x`height` and whose pixel data is a few bytes: a decompression bomb's
    shape, or (small sizes) a corrupt file."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")


def video(path: Path, *, faststart: bool = True) -> Path:
    """A 24-frame H.264 MP4 (12 drawings on 2s) with its index at the front, as cameras and web exports write
    it, so that a cut-off copy still opens."""
    import imageio_ffmpeg

    from tasks.synthetic import line_test, write_video

    whole = path.with_name(f".{path.stem}.whole.mp4")
    write_video(line_test([2] * 12, width=128, height=80, seed=1).frames, whole, 24, crf=10)
    flags = ["-movflags", "+faststart"] if faststart else []
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", str(whole), "-c", "copy", *flags,
                    str(path)], check=True)  # fmt: skip
    return path


def _list(folder: Path, text: str, name: str = "shots.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def _shots(*shots: str, defaults: str = "{fps: 24, backend: crossfade}") -> Callable[[Path], Path]:
    """A YAML shot list of the shots given (each a flow mapping), with two keyframe images a.png, b.png."""

    def build(folder: Path) -> Path:
        keyframe(folder / "a.png", 0)
        keyframe(folder / "b.png", 20)
        return _list(folder, f"defaults: {defaults}\nshots:\n" + "".join(f"  - {s}\n" for s in shots))

    return build


KEYS = "[{frame: 0, image: a.png}, {frame: 4, image: b.png}]"


def _alias_bomb(folder: Path) -> Path:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    return _list(folder, "\n".join(lines) + "\nshots: [*a8]\n")


def _huge_list(folder: Path) -> Path:
    path = folder / "shots.yaml"
    with open(path, "w") as f:
        f.write("shots:\n")
        f.write(("  - {code: sh, source: a.mp4, fps: 24}  # padding\n" * 200_000))
    return path


def _symlink_out(folder: Path) -> Path:
    outside = folder.parent / f"{folder.name}-outside"
    outside.mkdir(exist_ok=True)
    keyframe(outside / "secret.png", 3)
    (folder / "link.png").symlink_to(outside / "secret.png")
    return _shots(f"{{code: sh, source: [{{frame: 0, image: link.png}}, {{frame: 4, image: b.png}}]}}")(folder)


def _symlink_loop(folder: Path) -> Path:
    (folder / "loop1.png").symlink_to("loop2.png")
    (folder / "loop2.png").symlink_to("loop1.png")
    return _shots("{code: sh, source: [{frame: 0, image: loop1.png}, {frame: 4, image: b.png}]}")(folder)


def _csv_bom(folder: Path) -> tuple[list[str], dict[str, str]]:
    keyframe(folder / "a.png", 0)
    path = folder / "shots.csv"
    # Excel's "CSV UTF-8": a byte-order mark, then the header.
    path.write_bytes("\ufeffcode,source,fps,backend\nbom,keys/,24,crossfade\n".encode())
    keys = folder / "keys"
    for n, shade in ((1, 0), (5, 20)):
        keyframe(keys / f"k.{n:04d}.png", shade)
    return ["plan", str(path)], {}


def _render(env: dict[str, str]) -> Callable[[Path], tuple[list[str], dict[str, str]]]:
    def build(folder: Path) -> tuple[list[str], dict[str, str]]:
        path = _shots(f"{{code: sh, source: {KEYS}}}")(folder)
        return ["render", str(path), "-o", str(folder / "out")], env

    return build


class _Payload:
    """Unpickling this runs a shell command that creates the marker file `pwned` beside the checkpoint."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def _checkpoint(fmt: str) -> Callable[[Path], tuple[list[str], dict[str, str]]]:
    def build(folder: Path) -> tuple[list[str], dict[str, str]]:
        path = folder / ("evil.safetensors" if fmt == "header" else "evil.ckpt")
        payload = {"state_dict": {}, "payload": _Payload(folder / "pwned")}
        if fmt in ("zip", "legacy"):
            import torch

            payload["state_dict"] = {"x": torch.zeros(1)}
            torch.save(payload, path, _use_new_zipfile_serialization=fmt == "zip")
        elif fmt == "raw":
            path.write_bytes(pickle.dumps(payload))
        elif fmt == "header":  # a safetensors file whose header claims to be 2^40 bytes long
            path.write_bytes(struct.pack("<Q", 1 << 40) + b'{"x": ')
        else:
            path.write_bytes(b"")
        return ["models", "convert", str(path), str(folder / "out.safetensors")], {}

    return build


# ----------------------------------------------------------------------------- per-shot inputs


def _video_shot(make: Callable[[Path], None]) -> Callable[[Path], Any]:
    def build(folder: Path) -> Any:
        path = folder / "clip.mp4"
        make(path)
        return {"source": path.name}

    return build


def _truncate(path: Path) -> None:
    data = video(path.with_name("full.mp4")).read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])


def _zero_middle(path: Path) -> None:
    data = bytearray(video(path.with_name("full.mp4")).read_bytes())
    third = len(data) // 3
    data[third : 2 * third] = bytes(third)  # a third of the frames' data lost to a bad sector
    path.write_bytes(bytes(data))


def _damage_middle(path: Path) -> None:
    damage_frame(video(path), 12)  # half of one frame's data lost: every frame still decodes, concealed


def _image_shot(make: Callable[[Path], Any]) -> Callable[[Path], Any]:
    """A keyframe-image shot whose first image is what `make` writes at `bad.png`."""

    def build(folder: Path) -> Any:
        make(folder / "bad.png")
        keyframe(folder / "b.png", 20)
        return {"source": [{"frame": 0, "image": "bad.png"}, {"frame": 4, "image": "b.png"}]}

    return build


def _sequence_shot(numbers: tuple[int, ...]) -> Callable[[Path], Any]:
    def build(folder: Path) -> Any:
        (folder / "seq").mkdir()
        for i, n in enumerate(numbers):
            keyframe(folder / "seq" / f"sh.{n:04d}.png", 10 * i)
        return {"source": "seq/sh.####.png"}

    return build


def _good_images_and(**extra: Any) -> Callable[[Path], Any]:
    def build(folder: Path) -> Any:
        keyframe(folder / "a.png", 0)
        keyframe(folder / "b.png", 20)
        return {"source": [{"frame": 0, "image": "a.png"}, {"frame": 4, "image": "b.png"}], **extra}

    return build


# ----------------------------------------------------------------------------- the table

CASES: tuple[Case, ...] = (
    # The shot list itself: refused whole, before anything is allocated for it.
    Case("yaml-alias-bomb", "#5", "shotlist", _alias_bomb,
         r"{list}: over 1000000 YAML nodes once aliases are expanded \(setting limits.max_yaml_nodes\)"),
    Case("shotlist-9-mb", "#5", "shotlist", _huge_list,
         r"{list}: \d+ bytes, over the limit of 8388608 \(setting limits.max_shotlist_bytes\)"),
    Case("keyframe-at-10-million", "#5", "shotlist",
         _shots("{code: sh, source: [{frame: 0, image: a.png}, {frame: 10000000, image: b.png}]}"),
         r"{list}: shots\[0\].source\[1\].frame: must be at most 1000000 \(setting limits.max_frame\) \(got 10000000\)"),
    Case("keyframe-at-minus-1", "earlier", "shotlist",
         _shots("{code: sh, source: [{frame: -1, image: a.png}, {frame: 4, image: b.png}]}"),
         r"{list}: shots\[0\].source\[0\].frame: input should be greater than or equal to 0 \(got -1\)"),
    Case("held-to-100-million", "#5", "shotlist", _shots(f"{{code: sh, source: {KEYS}, end: 100000000}}"),
         r"{list}: shots\[0\].end: must be at most 1000000 \(setting limits.max_frame\) \(got 100000000\)"),
    Case("range-over-100000-frames", "#5", "shotlist", _shots("{code: sh, source: a.mp4, start: 0, end: 200000}"),
         r"{list}: shots\[0\].end: the range 0-200000 is over 100000 frames \(setting limits.max_shot_frames\) \(got 200000\)"),
    Case("10000-inbetweens", "#5", "shotlist", _shots(f"{{code: sh, source: {KEYS}, render: {{inbetweens: 10000}}}}"),
         r"{list}: shots\[0\].render.inbetweens: must be at most 250 \(setting limits.max_inbetweens\) \(got 10000\)"),
    Case("fps-5000", "#5", "shotlist", _shots(f"{{code: sh, source: {KEYS}, fps: 5000}}"),
         r"{list}: shots\[0\].fps: must be between 1 and 240 fps \(settings limits.min_fps, limits.max_fps\) \(got 5000\)"),
    Case("fps-0", "earlier", "shotlist", _shots(f"{{code: sh, source: {KEYS}, fps: 0}}"),
         r"{list}: shots\[0\].fps: must be a positive number \(got 0\)"),
    Case("fps-not-a-number", "earlier", "shotlist", _shots(f"{{code: sh, source: {KEYS}, fps: fast}}"),
         r"{list}: shots\[0\].fps: must be a positive number \(got 'fast'\)"),
    Case("fps-over-env-limit", "#5", "shotlist", _shots(f"{{code: sh, source: {KEYS}, fps: 48}}"),
         r"{list}: shots\[0\].fps: must be between 1 and 30 fps \(settings limits.min_fps, limits.max_fps\) \(got 48\)",
         env={"TOONFARM_LIMITS__MAX_FPS": "30"}),
    Case("seed-above-64-bits", "#3", "shotlist", _shots(f"{{code: sh, source: {KEYS}, render: {{seed: 36893488147419103232}}}}"),
         r"{list}: shots\[0\].render.seed: input should be less than or equal to 9223372036854775807 \(got 36893488147419103232\)"),
    Case("seed-2-to-the-63", "#3", "shotlist", _shots(f"{{code: sh, source: {KEYS}, render: {{seed: 9223372036854775808}}}}"),
         r"{list}: shots\[0\].render.seed: input should be less than or equal to 9223372036854775807 \(got 9223372036854775808\)"),
    Case("seed-negative", "earlier", "shotlist", _shots(f"{{code: sh, source: {KEYS}, render: {{seed: -5}}}}"),
         r"{list}: shots\[0\].render.seed: input should be greater than or equal to 0 \(got -5\)"),
    Case("code-200-characters", "#3", "shotlist", _shots(f"{{code: {'x' * 200}, source: {KEYS}}}"),
         r"{list}: shots\[0\].code: must be at most 64 characters \(setting limits.max_name_length\) \(got 'xxx+\.\.\.\)"),
    Case("code-trailing-newline", "#7", "shotlist", _shots(f'{{code: "sh010\\n", source: {KEYS}}}'),
         r"{list}: shots\[0\].code: " + NAME + r" \(got 'sh010\\n'\)"),
    Case("sequence-trailing-newline", "#7", "shotlist", _shots(f'{{code: sh, sequence: "sq010\\n", source: {KEYS}}}'),
         r"{list}: shots\[0\].sequence: " + NAME + r" \(got 'sq010\\n'\)"),
    Case("code-with-path", "earlier", "shotlist", _shots(f"{{code: ../../etc, source: {KEYS}}}"),
         r"{list}: shots\[0\].code: " + NAME + r" \(got '\.\./\.\./etc'\)"),
    Case("unknown-field", "earlier", "shotlist", _shots(f"{{code: sh, source: {KEYS}, colour_grade: warm}}"),
         r"{list}: shots\[0\].colour_grade: unknown field"),
    Case("shot-not-a-mapping", "earlier", "shotlist", _shots("[sh, a.mp4, 24]"),
         r"{list}: shots\[0\]: must be a mapping of shot fields \(got list\)"),
    Case("shots-not-a-list", "earlier", "shotlist", lambda folder: _list(folder, "shots: 3\n"),
         r"{list}: shots: input should be a valid list \(got 3\)"),
    Case("unknown-backend", "earlier", "shotlist", _shots(f"{{code: sh, source: {KEYS}, backend: dall-e}}"),
         r"{list}: shots\[0\].backend: unknown backend; choose one of crossfade, rife, simulated-gpu, toon \(got 'dall-e'\)"),
    Case("unknown-backend-parameter", "earlier", "shotlist",
         _shots(f"{{code: sh, source: {KEYS}, render: {{params: {{steps: 9}}}}}}"),
         r"{list}: shots\[0\].render: the crossfade backend takes no parameter steps \(it takes: none\)"),
    Case("empty-shot-list", "earlier", "shotlist", lambda folder: _list(folder, ""),
         r"{list}: must be a mapping with a 'shots' list \(got an empty file\)"),
    Case("path-escapes-list-folder", "earlier", "shotlist", _shots("{code: sh, source: ../../../etc/passwd.mp4}"),
         r"{list}: shots\[0\].source: leaves the shot list's folder .*; allow_outside_root=True \(--allow-outside-root\) "
         r"permits it \(got '\.\./\.\./\.\./etc/passwd\.mp4'\)"),
    Case("symlink-escapes-list-folder", "earlier", "shotlist", _symlink_out,
         r"{list}: shots\[0\].source\[0\].image: leaves the shot list's folder .* \(got 'link\.png'\)"),
    Case("symlink-loop", "corpus", "shotlist", _symlink_loop,
         r"{list}: shots\[0\].source\[0\].image: cannot resolve the path: Symlink loop from '.*loop1\.png' \(got 'loop1\.png'\)"),
    Case("key-written-twice", "earlier", "shotlist", lambda folder: _list(folder, "shots: [{code: a, code: b}]\n"),
         r"{list}: line 1, column 19: YAML syntax error: key 'code' appears twice in one mapping"),
    Case("duplicate-shot", "earlier", "shotlist", _shots(f"{{code: sh, source: {KEYS}}}", f"{{code: sh, source: {KEYS}}}"),
         r"{list}: shots\[1\].code: duplicate shot 'untitled/main/sh' \(first at shots\[0\]\)"),
    Case("yaml-syntax-error", "earlier", "shotlist", lambda folder: _list(folder, "shots: [{code: a\n"),
         r"{list}: line 2, column 1: YAML syntax error: .*"),
    Case("csv-unknown-column", "earlier", "shotlist", lambda folder: _list(folder, "code,source,fps,colour\n", "shots.csv"),
         r"{list}: line 1: unknown column 'colour' \(columns: code, source, .*\)"),
    Case("not-a-shot-list-suffix", "earlier", "shotlist", lambda folder: _list(folder, "shots: []\n", "shots.txt"),
         r"{list}: a shot list must be a \.yaml, \.yml, \.csv, \.otio or \.edl file"),
    Case("shot-list-missing", "earlier", "shotlist", lambda folder: folder / "absent.yaml",
         r"{list}: cannot read shot list: No such file or directory"),
    Case("shot-list-not-utf8", "earlier", "shotlist",
         lambda folder: (folder / "shots.yaml", (folder / "shots.yaml").write_bytes(b"shots: [\xff\xfe]\n"))[0],
         r"{list}: cannot read shot list: 'utf-8' codec can't decode byte 0xff .*"),
    Case("lut-not-cube", "earlier", "shotlist", _shots(f"{{code: sh, source: {KEYS}, lut: show.png}}"),
         r"{list}: shots\[0\].lut: must be a \.cube LUT file \(got '.*show\.png'\)"),
    Case("end-before-start", "earlier", "shotlist", _shots("{code: sh, source: a.mp4, start: 10, end: 5}"),
         r"{list}: shots\[0\].end: must not come before start \(10\) \(got 5\)"),
    # Other commands.
    Case("csv-with-byte-order-mark", "#7", "command", _csv_bom, r".*untitled/main/bom .*", exit=0),
    Case("umask-not-octal", "#7", "command", _render({"TOONFARM_UMASK": "rw-r--r--"}),
         r"setting umask: Value error, not an octal umask: 'rw-r--r--' \(e\.g\. 022\) \(got 'rw-r--r--'\)"),
    Case("umask-locks-the-owner-out", "#7", "command", _render({"TOONFARM_UMASK": "700"}),
         r"setting umask: Value error, umask 700 takes the farm's own access to its files away \(e\.g\. 022, 027\) \(got '700'\)"),
    Case("db-url-not-a-url", "earlier", "command", _render({"TOONFARM_DB": "shots.db"}),
         r"setting db: Value error, not a database URL: 'shots\.db' .*"),
    Case("checkpoint-zip-pickle", "earlier", "command", _checkpoint("zip"),
         r".*evil\.ckpt: refused, the pickle holds more than tensors \(.*\)"),
    Case("checkpoint-legacy-pickle", "earlier", "command", _checkpoint("legacy"),
         r".*evil\.ckpt: refused, the pickle holds more than tensors \(.*\)"),
    Case("checkpoint-raw-pickle", "earlier", "command", _checkpoint("raw"),
         r".*evil\.ckpt: not a readable torch checkpoint \(Unsupported operand \d+\)"),
    Case("safetensors-2-to-the-40-header", "earlier", "command", _checkpoint("header"),
         r".*evil\.safetensors: not a readable safetensors file \(.*\)"),
    Case("checkpoint-empty", "earlier", "command", _checkpoint("empty"),
         r".*evil\.ckpt: not a readable torch checkpoint \(.*\)"),
    # Per-shot media: that shot fails in one line, the others publish.
    Case("video-missing", "earlier", "shot", lambda folder: {"source": "absent.mp4"},
         r"{shot}.source: {here}absent\.mp4: video file not found"),
    Case("video-not-a-video", "earlier", "shot", _video_shot(lambda p: p.write_text("not a video")),
         r"{shot}.source: {here}clip\.mp4: not a readable video"),
    Case("video-empty", "earlier", "shot", _video_shot(lambda p: p.write_bytes(b"")),
         r"{shot}.source: {here}clip\.mp4: not a readable video"),
    Case("video-truncated", "#6", "shot", _video_shot(_truncate),
         r"{shot}.source: {here}clip\.mp4: decoded \d+ of the 24 frames its container lists \(truncated or damaged file\)"),
    Case("video-third-zeroed", "#6", "shot", _video_shot(_zero_middle),
         r"{shot}.source: {here}clip\.mp4: decoded \d+ of the 24 frames its container lists \(truncated or damaged file\)"),
    Case("video-middle-damaged", "#6", "shot", _video_shot(_damage_middle),
         r"{shot}.source: {here}clip\.mp4: frame 11 of 24 is damaged \(decoder: error while decoding MB \d+ \d+, "
         r"bytestream -?\d+\); re-export the video"),
    Case("keyframe-missing", "earlier", "shot", _image_shot(lambda p: None),
         r"{shot}.source.images\[0\].image: {here}bad\.png: image file not found"),
    Case("keyframe-not-an-image", "earlier", "shot", _image_shot(lambda p: p.write_text("drawing")),
         r"{shot}.source.images\[0\].image: {here}bad\.png: not a readable image \(supported: .*\)"),
    Case("keyframe-empty", "earlier", "shot", _image_shot(lambda p: p.write_bytes(b"")),
         r"{shot}.source.images\[0\].image: {here}bad\.png: not a readable image \(supported: .*\)"),
    Case("keyframe-is-a-folder", "earlier", "shot", _image_shot(lambda p: p.mkdir()),
         r"{shot}.source.images\[0\].image: {here}bad\.png: cannot read image: Is a directory"),
    Case("png-claims-100000x100000", "#3", "shot", _image_shot(lambda p: p.write_bytes(png_header(100_000, 100_000))),
         r"{shot}.source.images\[0\].image: {here}bad\.png: 100000x100000 is over the limit of 40000000 pixels "
         r"\(setting limits.max_image_pixels\)"),
    Case("png-corrupt-pixels", "earlier", "shot", _image_shot(lambda p: p.write_bytes(png_header(W, H))),
         r"{shot}.source.images\[0\].image: {here}bad\.png: not a readable image \(corrupt PNG\)"),
    Case("sequence-frame-over-limit", "#5", "shot", _sequence_shot((1001, 10_000_000)),
         r"{shot}.source: {here}seq/sh\.10000000\.png: frame number 10000000 is over the limit of 1000000 \(setting limits.max_frame\)"),
    Case("sequence-folder-empty", "earlier", "shot", _sequence_shot(()),
         r"{shot}.source: {here}seq/sh\.####\.png: no numbered image files found"),
    Case("xsheet-missing", "earlier", "shot", lambda folder: {"source": video(folder / "clip.mp4").name, "xsheet": "absent.csv"},
         r"{shot}.xsheet: {here}absent\.csv: .*"),
    Case("lut-missing", "earlier", "shot", _good_images_and(lut="absent.cube"),
         r".*absent\.cube.*"),
)  # fmt: skip
