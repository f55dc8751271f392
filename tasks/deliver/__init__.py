"""Deliverables: the outputs of a shot version, chosen per shot (`deliver: [png, h264, prores4444]`).

A format is one module (a `Deliverable` subclass from `tasks.deliver.base`: its settings, `start`/`add`/
`finish`, and a read-back check of what it wrote) plus one `DELIVERABLES` entry; nothing else names a
format. A shot list entry is a format's name, or a one-key mapping giving its settings
(`{png: {first_frame: 1001}}`), checked when the list loads. Each deliverable's identity (format, code version, settings) is part of the assembly key;
what it wrote becomes one output row of the version (kind, path, sha256, frame count, format details).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from shot_db.records import OutputFile

from tasks.deliver.base import Deliverable, DeliverSpec, DeliveryError

__all__ = [
    "DEFAULT_DELIVER",
    "DELIVERABLES",
    "DeliverSpec",
    "Deliverable",
    "DeliveryError",
    "assembly_output",
    "build",
    "check_deliver",
    "deliverable_class",
    "editorial_output",
    "video_of",
]

DELIVERABLES: dict[str, str] = {
    "png": "tasks.deliver.png:PngSequence",
    "h264": "tasks.deliver.h264:H264",
    "prores4444": "tasks.deliver.prores:ProRes4444",
}
DEFAULT_DELIVER: tuple[str, ...] = ("png", "h264")

# Versions made before deliverables existed hashed these settings as their output: the same files as
# png + h264 at these identities, so their assembly keys still hold and a re-run makes no new version.
_MADE_BEFORE_DELIVERABLES = (
    {"kind": "png", "version": 1, "compression": 1, "first_frame": 1},
    {"kind": "h264", "version": 1, "crf": 16, "preset": "medium", "tune": "animation"},
)
_THEIR_OUTPUT_KEY = {"crf": 16, "preset": "medium", "tune": "animation", "png_compression": 1}


def deliverable_class(kind: str) -> type[Deliverable]:
    """The registered class of format `kind`; DeliveryError listing the formats there are."""
    if kind not in DELIVERABLES:
        raise DeliveryError(f"{kind}: unknown format; choose from {', '.join(sorted(DELIVERABLES))}")
    module, _, name = DELIVERABLES[kind].partition(":")
    cls = getattr(importlib.import_module(module), name)
    if not (isinstance(cls, type) and issubclass(cls, Deliverable)) or cls.kind != kind:
        raise TypeError(f"DELIVERABLES[{kind!r}] = {DELIVERABLES[kind]!r} is not a Deliverable of kind {kind!r}")
    return cls


def _entry(value: Any) -> DeliverSpec:
    if isinstance(value, DeliverSpec):  # checked already; a shot validated again
        kind, given = value.kind, value.settings
    elif isinstance(value, Mapping) and set(value) == {"kind", "settings"}:  # a DeliverSpec as plain data
        kind, given = value["kind"], value["settings"]
    elif isinstance(value, str):
        kind, given = value, {}
    elif isinstance(value, Mapping) and len(value) == 1:
        ((kind, given),) = value.items()
        given = {} if given is None else given
        if not isinstance(given, Mapping):
            raise DeliveryError(f"{kind}: its settings must be a mapping (got {given!r})")
    else:
        raise DeliveryError(f"{value!r}: give a format's name, or one format's name mapped to its settings")
    cls = deliverable_class(str(kind))
    try:
        settings = cls.Settings.model_validate(dict(given))
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in err["loc"])
        what = "unknown setting" if err["type"] == "extra_forbidden" else err["msg"][:1].lower() + err["msg"][1:]
        got = f" (got {err['input']!r})" if err["type"] != "extra_forbidden" else ""
        raise DeliveryError(f"{kind}.{field}: {what}{got}") from None
    return DeliverSpec(kind=str(kind), settings=settings.model_dump(mode="json", exclude_unset=True))


def check_deliver(value: Any) -> tuple[DeliverSpec, ...]:
    """A shot's `deliver` list, each format known and its settings valid; DeliveryError (one line) if not."""
    if isinstance(value, (str, Mapping)):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise DeliveryError("must list at least one format, e.g. [png, h264]")
    specs = tuple(_entry(v) for v in value)
    kinds = [s.kind for s in specs]
    twice = sorted({k for k in kinds if kinds.count(k) > 1})
    if twice:
        raise DeliveryError(f"{twice[0]}: listed twice")
    return specs


def build(specs: Sequence[DeliverSpec]) -> list[Deliverable]:
    """Fresh deliverables for one take, in the shot's order."""
    out = []
    for spec in specs:
        cls = deliverable_class(spec.kind)
        out.append(cls(cls.Settings.model_validate(spec.settings)))
    return out


def assembly_output(deliverables: Sequence[Deliverable], timecode: str | None) -> dict[str, Any]:
    """What the deliverables put into a version's assembly key: their identities, and the start timecode
    when one of them writes it into its file."""
    identities = [d.identity() for d in deliverables]
    stamped = timecode is not None and any(d.timecode for d in deliverables)
    if not stamped and sorted(identities, key=lambda i: str(i["kind"])) == sorted(
        _MADE_BEFORE_DELIVERABLES, key=lambda i: str(i["kind"])
    ):
        return dict(_THEIR_OUTPUT_KEY)
    return {"deliver": identities, **({"timecode": timecode} if stamped else {})}


def _known(kind: str) -> type[Deliverable] | None:
    """The class of a recorded output's format, or None for one no longer registered."""
    return deliverable_class(kind) if kind in DELIVERABLES else None


def video_of(outputs: Sequence[OutputFile]) -> str | None:
    """The path of the first output a web browser plays (the dashboard's link), if any."""
    return next((o.path for o in outputs if (cls := _known(o.kind)) is not None and cls.browser), None)


def editorial_output(outputs: Sequence[OutputFile]) -> OutputFile | None:
    """The output an editor's timeline should point at: the highest `editorial` rank (ProRes over H.264)."""
    ranked = [(cls.editorial, -i, o) for i, o in enumerate(outputs) if (cls := _known(o.kind)) is not None and cls.editorial > 0]
    return max(ranked, key=lambda r: (r[0], r[1]))[2] if ranked else None
