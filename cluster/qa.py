"""The worker's QA step on a backend's output, before anything is published.

Hard problems (wrong count or size, all black, a copied keyframe: tooncrafter_model/quality.py) reject
the pair, which the pool then retries. The quality scores (tone, flicker, ghost, lines, vanish) only
travel with the result for now, in `PairResult.meta["qa"]`: a flagged pair is still published, and its
flags are recorded with it.
"""

from __future__ import annotations

from collections.abc import Sequence

from tooncrafter_model.errors import TransientError
from tooncrafter_model.frames import Frame
from tooncrafter_model.quality import QAThresholds, hard_problems, score_pair


class QAError(TransientError):
    """A backend returned frames that must not be published (black, a copied keyframe, wrong size); a
    retry on another worker (another GPU, another node) may well make good ones."""


def check_output(
    frame_a: Frame,
    frame_b: Frame,
    times: Sequence[float],
    frames: Sequence[Frame],
    thresholds: QAThresholds | None = None,
) -> dict[str, object]:
    """Raise QAError when the in-betweens must not be published; else return their quality record."""
    problems = hard_problems(frame_a, frame_b, times, frames)
    if problems:
        raise QAError("; ".join(problems))
    try:
        return score_pair(frame_a, frame_b, times, frames, thresholds).as_json()
    except Exception as exc:  # a scoring failure must not cost a finished render: it is recorded instead
        return {"error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
