"""Shared fixtures for the ToonCrafter tests: fixture paths, seeded parity weights, a tiny loaded model."""

from __future__ import annotations

import hashlib
import math
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tooncrafter"


def seeded_param(key: str, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """The parity harness's weight rule: N(0,1) from a generator seeded by (seed, crc32(key)), then scaled.

    Norm scales (1-D `.weight`) become 1 + 0.1 x, other 1-D tensors 0.1 x, `mix_factor` stays x, and
    matrices are divided by sqrt(fan_in).
    """
    generator = torch.Generator().manual_seed((seed * 1000003 + zlib.crc32(key.encode())) % 2**62)
    x = torch.randn(tuple(shape), generator=generator, dtype=torch.float32)
    if key.endswith("mix_factor"):
        return x
    if len(shape) <= 1:
        return 1.0 + 0.1 * x if key.endswith(".weight") else 0.1 * x
    return x / math.sqrt(math.prod(shape[1:]))


def seeded_state_dict(shapes: Mapping[str, tuple[int, ...]], seed: int) -> dict[str, torch.Tensor]:
    return {k: seeded_param(k, tuple(s), seed) for k, s in shapes.items()}


def state_dict_digest(sd: Mapping[str, torch.Tensor]) -> str:
    """sha256 over sorted keys and raw float32 bytes (the golden file's `param_digest`)."""
    h = hashlib.sha256()
    for k in sorted(sd):
        h.update(k.encode())
        h.update(sd[k].detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()


@pytest.fixture(autouse=True)
def _torch_threads() -> Iterator[None]:
    # one thread: on 2 shared cores, OpenMP barriers of a 2-thread pool stall badly whenever a core is busy
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def golden_t8() -> dict:
    return torch.load(FIXTURES / "tc_golden_T8_64x64_s4.pt", weights_only=True)


@pytest.fixture(scope="session")
def seeded_weights():
    """Callable (shapes, seed) -> state dict, by the parity harness's rule."""
    return seeded_state_dict


@pytest.fixture(scope="session")
def weights_digest():
    """Callable state dict -> the golden file's digest."""
    return state_dict_digest


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def tiny_model(golden_t8: dict):
    """The parity-tiny model (T=8, 64x64) with the golden file's seeded weights, eval mode, float32 CPU."""
    from tooncrafter_model.config import ToonCrafterConfig
    from tooncrafter_model.ddim import SCHEDULE_BUFFERS
    from tooncrafter_model.pipeline import build_model

    model = build_model(ToonCrafterConfig.parity_tiny())
    own = model.state_dict()
    sd = seeded_state_dict(golden_t8["param_shapes"], golden_t8["seed"])
    sd.update({k: own[k] for k in SCHEDULE_BUFFERS})
    model.load_state_dict(sd, strict=True)
    return model


@pytest.fixture(scope="session")
def tokenizer():
    from tooncrafter_model.tokenizer import BPETokenizer

    return BPETokenizer.from_cache()
