"""Loading a full-size ToonCrafter checkpoint: seconds and memory, printed as JSON lines.

    .venv/bin/python bench/checkpoint.py               # writes ~10.4 GB twice under --dir, then removes them

The official model.ckpt cannot be downloaded here, so this writes one of the same layout: Lightning's
{"state_dict": ..., "global_step": ...} holding all 2668 keys of the official 512 config at their shapes and
dtypes (zeros), 10.4 GB. Each step then runs in a fresh process, so its peak RSS is its own:

- `load_ckpt`: `load_strict(build_model(meta), model.ckpt)`, i.e. torch.load(weights_only=True, mmap=True) and
  an assign-load; RSS right after, then after reading every tensor once (what moving to a GPU does).
- `convert`: what `toonfarm models convert model.ckpt model.safetensors` runs (strict check, streamed write).
- `load_safetensors`: the same strict load from the converted file.
- `identity`: the backend's identity, whose sha256 of the file is memoised by (path, size, mtime): the first
  call hashes 10.4 GB, the second reads the memo (what every later actor start costs).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def rss_gb() -> float:
    """This process's resident set now, from /proc (kB there, GB = 1e9 bytes here)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) * 1024 / 1e9, 2)
    return float("nan")


def peak_rss_gb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9, 2)  # ru_maxrss is in KiB


def step_write(path: Path) -> dict[str, Any]:
    import torch

    from tooncrafter_model.config import ToonCrafterConfig
    from tooncrafter_model.pipeline import build_model

    start = time.perf_counter()
    meta = build_model(ToonCrafterConfig.official_512(), device="meta").state_dict()
    sd = {k: torch.zeros(v.shape, dtype=v.dtype) for k, v in meta.items()}
    torch.save({"state_dict": sd, "global_step": 0}, path)
    seconds = round(time.perf_counter() - start, 1)
    return {"keys": len(sd), "file_gb": round(path.stat().st_size / 1e9, 2), "seconds": seconds}


def step_load(path: Path) -> dict[str, Any]:
    import torch

    from tooncrafter_model.checkpoint import load_strict
    from tooncrafter_model.config import ToonCrafterConfig
    from tooncrafter_model.pipeline import build_model

    before = rss_gb()
    start = time.perf_counter()
    model = load_strict(build_model(ToonCrafterConfig.official_512(), device="meta"), path)
    seconds = time.perf_counter() - start
    after_load = rss_gb()
    start = time.perf_counter()
    for t in model.state_dict().values():  # touch every page, as a move to the GPU does
        t.float().sum()
    return {
        "keys": len(model.state_dict()), "seconds": round(seconds, 2), "rss_before_gb": before,
        "rss_after_load_gb": after_load, "read_all_seconds": round(time.perf_counter() - start, 1),
        "rss_after_reading_all_gb": rss_gb(), "peak_rss_gb": peak_rss_gb()
    }


def step_convert(ckpt: Path, out: Path) -> dict[str, Any]:
    from tooncrafter_model.checkpoint import convert

    start = time.perf_counter()
    tensors = convert(ckpt, out)
    return {"tensors": tensors, "seconds": round(time.perf_counter() - start, 1),
            "file_gb": round(out.stat().st_size / 1e9, 2), "peak_rss_gb": peak_rss_gb()}


def step_identity(path: Path, cache: Path) -> dict[str, Any]:
    from tooncrafter_model.toon import ToonBackend

    out: dict[str, Any] = {}
    for label in ("first_s", "memoised_s"):
        start = time.perf_counter()
        identity = ToonBackend.identify(checkpoint=str(path), cache_dir=str(cache))
        out[label] = round(time.perf_counter() - start, 2)
    return {**out, "sha256": identity.weights_sha256[:16], "peak_rss_gb": peak_rss_gb()}


def emit(bench: str, record: dict[str, Any]) -> None:
    print(json.dumps({"bench": bench, **record}), flush=True)


def run_step(*args: str) -> dict[str, Any]:
    """One step in a fresh interpreter; its last stdout line is the JSON record."""
    proc = subprocess.run([sys.executable, __file__, "--step", *args], capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1][:300]}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", type=Path, default=None, help="where to write the files (needs ~21 GB free)")
    p.add_argument("--keep", action="store_true", help="keep the written files")
    p.add_argument("--step", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.step:
        name, *rest = args.step
        steps = {"write": step_write, "load": step_load, "convert": step_convert, "identity": step_identity}
        record = steps[name](*(Path(a) for a in rest))  # type: ignore[operator]
        print(json.dumps(record), flush=True)
        return
    work = Path(tempfile.mkdtemp(prefix="tc-ckpt-", dir=args.dir))
    ckpt, st, cache = work / "model.ckpt", work / "model.safetensors", work / "cache"
    try:
        emit("write_ckpt", run_step("write", str(ckpt)))
        emit("load_ckpt", run_step("load", str(ckpt)))
        emit("convert", run_step("convert", str(ckpt), str(st)))
        emit("load_safetensors", run_step("load", str(st)))
        emit("identity", run_step("identity", str(ckpt), str(cache)))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
