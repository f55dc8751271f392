"""Loading ToonCrafter weights strictly, from the official `.ckpt` or our `.safetensors`.

`.ckpt` files are opened only with `torch.load(weights_only=True, mmap=True)`: a pickle that carries code is
refused, never run. The key mapping is one pure function, `official_to_toonfarm`; our module names equal the
checkpoint's, so its rename table only covers older checkpoints.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from tooncrafter_model.config import ToonCrafterConfig
from tooncrafter_model.errors import UserError
from tooncrafter_model.pipeline import build_model
from tooncrafter_model.store import atomic_write


class CheckpointError(UserError):
    """A weights file is unreadable, unsafe, or does not match the model exactly."""


# Older DynamiCrafter-family checkpoints name the fs embedding after "frame stride".
RENAMES: Mapping[str, str] = {"model.diffusion_model.framestride_embed.": "model.diffusion_model.fps_embedding."}


def official_to_toonfarm(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map official key names to ours (a pure function: prefix renames only)."""
    out = {}
    for key, value in state_dict.items():
        for old, new in RENAMES.items():
            if key.startswith(old):
                key = new + key[len(old) :]
        out[key] = value
    return out


# ---------------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------------


_TORCH_BOILERPLATE = ("Weights only load failed", "Check the documentation", "Please file an issue")


def _reason(exc: BaseException) -> str:
    """The informative line of a torch.load error (its messages run over many lines of advice)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(_TORCH_BOILERPLATE)]
    lines = [line.removeprefix("WeightsUnpickler error:").strip() for line in lines]
    lines = [line for line in lines if line]
    return (lines[0] if lines else type(exc).__name__)[:200]


def _load_pickle(path: Path) -> Any:
    for mmap in (True, False):  # legacy (pre-zip) torch files cannot be memory-mapped
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
        except pickle.UnpicklingError as exc:
            reason = _reason(exc)
            if "global" in reason.lower():
                raise CheckpointError(f"{path}: refused, the pickle holds more than tensors ({reason})") from None
            raise CheckpointError(f"{path}: not a readable torch checkpoint ({reason})") from None
        except (RuntimeError, EOFError, OSError, ValueError) as exc:
            if not (mmap and "mmap" in str(exc)):
                raise CheckpointError(f"{path}: not a readable torch checkpoint ({_reason(exc)})") from None
    raise AssertionError("unreachable")


_DEEPSPEED_PREFIX = "_forward_module."


def _unwrap(raw: Any) -> Any:
    """Lightning's {"state_dict": ...} or DeepSpeed's {"module": {"_forward_module.<key>": ...}} -> the tensors."""
    if isinstance(raw, Mapping) and isinstance(raw.get("state_dict"), Mapping):
        return raw["state_dict"]
    if isinstance(raw, Mapping) and isinstance(raw.get("module"), Mapping):
        return {k.removeprefix(_DEEPSPEED_PREFIX): v for k, v in raw["module"].items()}
    return raw


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Tensors of a `.ckpt`/`.pt`/`.pth` (Lightning or DeepSpeed layout) or `.safetensors`, renamed to our keys."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.suffix == ".safetensors":
        try:
            raw: Any = load_file(path)
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None
    else:
        raw = _unwrap(_load_pickle(path))
    if not isinstance(raw, Mapping):
        raise CheckpointError(f"{path}: expected a mapping of tensors, found {type(raw).__name__}")
    bad = [k for k, v in raw.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path}: {len(bad)} entries are not named tensors, e.g. {bad[:3]}")
    return official_to_toonfarm(raw)


def check_keys(
    path: str | os.PathLike[str], expected: Mapping[str, tuple[int, ...]], state_dict: Mapping[str, torch.Tensor]
) -> None:
    """Raise one CheckpointError naming the file, the counts and the first bad keys unless keys and shapes match."""
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    shapes = sorted(
        f"{k} {tuple(state_dict[k].shape)} != model {tuple(expected[k])}"
        for k in set(expected) & set(state_dict)
        if tuple(state_dict[k].shape) != tuple(expected[k])
    )
    if missing or unexpected or shapes:
        parts = [f"{name} {len(keys)} (e.g. {', '.join(keys[:3])})"
                 for name, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", shapes)) if keys]
        raise CheckpointError(f"{path}: does not match the model ({len(expected)} keys): " + "; ".join(parts))


def load_strict(model: nn.Module, path: str | os.PathLike[str]) -> nn.Module:
    """Load every tensor of `path` into `model`, exact key set and shapes; returns the model.

    A model built on the meta device takes the file's tensors directly (assign; a .ckpt stays memory-mapped).
    """
    sd = read_state_dict(path)
    own = model.state_dict()
    check_keys(path, {k: tuple(v.shape) for k, v in own.items()}, sd)
    on_meta = any(v.is_meta for v in own.values())
    if on_meta:
        sd = {k: v if v.dtype == own[k].dtype else v.to(own[k].dtype) for k, v in sd.items()}
    model.load_state_dict(sd, strict=True, assign=on_meta)
    return model


# ---------------------------------------------------------------------------------------------------
# Writing safetensors (streamed: a 10.5 GB checkpoint never sits in memory twice)
# ---------------------------------------------------------------------------------------------------

_ST_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
              torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL"}


def write_safetensors(
    state_dict: Mapping[str, torch.Tensor], path: str | os.PathLike[str], metadata: Mapping[str, str] | None = None
) -> None:
    """Write tensors in the safetensors layout (8-byte header size, JSON header, raw data), atomically."""
    path = Path(path)
    header: dict[str, Any] = {"__metadata__": dict(metadata or {})}
    offset = 0
    keys = sorted(state_dict)
    for key in keys:
        t = state_dict[key]
        if t.dtype not in _ST_DTYPES:
            raise CheckpointError(f"{path}: tensor {key} has unsupported dtype {t.dtype}")
        size = t.numel() * t.element_size()
        header[key] = {"dtype": _ST_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + size]}
        offset += size
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # data starts 8-byte aligned
    with atomic_write(path) as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for key in keys:
            t = state_dict[key].detach().cpu().contiguous()
            f.write(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")


def convert(
    ckpt_path: str | os.PathLike[str], safetensors_path: str | os.PathLike[str], config: ToonCrafterConfig | None = None
) -> int:
    """Check an official `.ckpt` strictly against the model of `config` (default: official 512) and write it
    as `.safetensors`; returns the number of tensors written."""
    cfg = config or ToonCrafterConfig.official_512()
    sd = read_state_dict(ckpt_path)
    expected = {k: tuple(v.shape) for k, v in build_model(cfg, device="meta").state_dict().items()}
    check_keys(ckpt_path, expected, sd)
    write_safetensors(sd, safetensors_path, {"format": "pt", "source": Path(ckpt_path).name})
    return len(sd)
