"""ProRes 4444 in QuickTime for editorial: 4:4:4 10-bit, BT.709 tagged, carrying the start timecode of the
shot's place in the edit it came from, so an editor's conform lines it up with the cut.

Read back, ffmpeg (and ffprobe) report a ProRes 4444 stream as yuv444p12le whatever depth was encoded:
that is the decoder's output format, the bitstream does not store one. The check is the profile (4444,
fourcc ap4h) and 4:4:4 at 10 or 12 bits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tasks.deliver.base import Take
from tasks.deliver._ffmpeg import FfmpegMovie


class ProRes4444(FfmpegMovie):
    """`<shot>_v001.mov`: ProRes 4444 (prores_ks), yuv444p10le, BT.709, start timecode from the edit."""

    kind = "prores4444"
    editorial = 2
    timecode = True
    suffix = ".mov"

    def output_options(self, take: Take) -> dict[str, Any]:
        rate = f"{take.fps.numerator}/{take.fps.denominator}"
        options: dict[str, Any] = {
            "vcodec": "prores_ks", "profile:v": "4444", "pix_fmt": "yuv444p10le", "r": rate,
        }  # fmt: skip
        if take.timecode is not None:
            options["timecode"] = take.timecode
        return options

    def expect(self, take: Take) -> Mapping[str, object]:
        return {
            "codec": "prores", "profile": "4444", "tag": "ap4h", "pix_fmt": frozenset({"yuv444p10le", "yuv444p12le"}),
            "range": "tv", "colour": ("bt709", "bt709", "bt709"), "width": take.width, "height": take.height,
            "frame_count": take.frame_count, "fps": take.fps, "timecode": take.timecode,
        }  # fmt: skip
