"""Identities by content: the render key of a pair and the assembly key of a shot version, and what a
version's sidecar says of a pair the quality policy rendered again.

"Stale" means stored key != computed key; that is how a re-render picks exactly what changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tooncrafter_model.backend import BackendIdentity

if TYPE_CHECKING:
    from tasks.render import PairWork, ShotWork


def _digest(payload: Mapping[str, Any]) -> str:
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def render_key(
    *,
    hash_a: str,
    hash_b: str,
    identity: BackendIdentity,
    times: Sequence[float],
    seed: int,
    prompt: str = "",
    params: Mapping[str, Any] | None = None,
    sketch_hashes: Sequence[tuple[float, str]] = (),
) -> str:
    """Hash of everything that decides a pair's pixels: keyframe pixels (never paths), backend
    identity (name, weights sha256, config, code version), times, seed, prompt, parameters, sketches."""
    return _digest(
        {
            "a": hash_a,
            "b": hash_b,
            "backend": identity.as_dict(),
            "times": [round(float(t), 9) for t in times],
            "seed": int(seed),
            "prompt": prompt,
            "params": dict(params or {}),
            "sketches": [[round(float(t), 9), h] for t, h in sketch_hashes],
        }
    )


def assembly_key(
    *,
    layout: Sequence[str],
    fps: str,
    lut_sha256: str | None,
    output: Mapping[str, Any] | None = None,
) -> str:
    """Hash of what decides a shot version's outputs: for each output frame the identity of its source
    (keyframe pixel hash, or render key + index), the fps, the LUT content and the output settings."""
    return _digest({"layout": list(layout), "fps": fps, "lut": lut_sha256, "output": dict(output or {})})


def pair_provenance(work: ShotWork, pair: PairWork) -> dict[str, Any]:
    """What a version's sidecar says of a pair beyond its key and frames: the backend and seed that made it
    when they are not the shot's (a retry, a fallback), and the quality policy's decision, if it made one."""
    out: dict[str, Any] = {}
    if pair.identity != work.identity or pair.seed != work.plan.shot.render.seed:
        out.update(backend=pair.identity.as_dict(), seed=pair.seed, params=dict(pair.params))
    if pair.decision is not None:
        out["qa"] = pair.decision.as_json()
    return out
