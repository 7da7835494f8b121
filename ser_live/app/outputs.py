"""The outputs a front-end attaches to what the engine reports: console and JSON lines, clip results, session files.

The writers live in :mod:`ser_live.sinks.writers`; this is the app layer's face of them, so the console and the
window never import below the app layer.
"""

from __future__ import annotations

from ..sinks.writers import (
    AudioRecorder,
    CsvRecorder,
    JsonPrinter,
    TextPrinter,
    audio_path_beside,
    clip_header,
    clip_json,
    format_clip,
    format_summary,
)

__all__ = ["TextPrinter", "JsonPrinter", "format_summary", "clip_header", "clip_json", "format_clip", "CsvRecorder",
           "AudioRecorder", "audio_path_beside"]
