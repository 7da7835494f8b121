"""The one colour per emotion used everywhere in the window: the Okabe–Ito colour-blind-safe palette.

Okabe & Ito (2008), "Color Universal Design": seven chromatic colours that stay distinguishable
under the common colour-vision deficiencies, one per emotion. Their eighth colour, black, stands for
"no speech"; on the window's dark background it is drawn as a neutral grey.
"""

from __future__ import annotations

__all__ = ["EMOTION_COLOURS", "NO_SPEECH_COLOUR", "BACKGROUND", "PANEL", "TEXT", "TEXT_DIM", "WARN", "ALERT",
           "colour_of"]

#: Emotion → ``#rrggbb``; fixed, so a colour means the same emotion in every view and every session.
EMOTION_COLOURS: dict[str, str] = {
    "neutral": "#56B4E9",    # sky blue
    "happy": "#F0E442",      # yellow
    "sad": "#0072B2",        # blue
    "angry": "#D55E00",      # vermillion
    "fearful": "#CC79A7",    # reddish purple
    "disgust": "#009E73",    # bluish green
    "surprised": "#E69F00",  # orange
}

NO_SPEECH_COLOUR = "#8C8C8C"
BACKGROUND = "#14171C"
PANEL = "#1E232A"
TEXT = "#E8E8E8"
TEXT_DIM = "#9AA0A6"
#: Level-meter states; vermillion and orange again, as they are the palette's warning colours.
WARN = "#E69F00"
ALERT = "#D55E00"


def colour_of(emotion: str | None) -> str:
    """The colour of an emotion; the no-speech grey for ``None`` or an unknown label."""
    return EMOTION_COLOURS.get(emotion or "", NO_SPEECH_COLOUR)
