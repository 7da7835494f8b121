"""The one colour per emotion used everywhere in the window, chosen to stay apart for colour-blind viewers.

Seven colours from the colour-blind-safe sets of Okabe & Ito (2008) and Paul Tol (2021), picked as
the seven whose smallest pairwise difference (CIE ΔE) stays largest, both for normal vision and as
simulated for protanopia, deuteranopia and tritanopia (Machado et al. 2009): at least 19 ΔE in all
four, against 16 for the plain Okabe–Ito set, where angry (vermillion), surprised (orange) and happy
(yellow) were hard to tell apart. Angry, happy and surprised are now red, yellow and cyan; neutral is a
light grey, the colour of no emotion. "No speech" is a darker grey, drawn as a filled band, never a
line; the history plot also names its lines, so no colour has to be told apart alone.

A model of other classes (one a user trained: *calm / irritated / escalating*) gets the colours of Paul Tol's
muted set, one per class in the model's order, never the grey of no speech.
"""

from __future__ import annotations

__all__ = ["EMOTION_COLOURS", "OTHER_CLASS_COLOURS", "NO_SPEECH_COLOUR", "BACKGROUND", "PANEL", "TEXT", "TEXT_DIM",
           "WARN", "ALERT", "colour_of"]

#: Emotion → ``#rrggbb``; fixed, so a colour means the same emotion in every view and every session.
EMOTION_COLOURS: dict[str, str] = {
    "neutral": "#C8C8C8",    # light grey
    "happy": "#F0E442",      # yellow (Okabe–Ito)
    "sad": "#7766DD",        # indigo (Tol's muted indigo, lightened to read on the dark background)
    "angry": "#EE3377",      # magenta red (Tol vibrant)
    "fearful": "#009988",    # teal (Tol vibrant)
    "disgust": "#EE7733",    # orange (Tol vibrant)
    "surprised": "#66CCEE",  # cyan (Tol bright)
}

#: Classes that are not the seven emotions, in a model's order (Tol's muted set, lightened where it must read on the
#: dark background); a model of more than nine such classes repeats them, and names every line.
OTHER_CLASS_COLOURS: tuple[str, ...] = ("#88CCEE", "#CC6677", "#DDCC77", "#44AA99", "#AA4499", "#999933", "#6A8FE0",
                                        "#E07A7A", "#5FBF5F")

NO_SPEECH_COLOUR = "#6E6E6E"
BACKGROUND = "#14171C"
PANEL = "#1E232A"
TEXT = "#E8E8E8"
TEXT_DIM = "#9AA0A6"
#: Level-meter states: Okabe–Ito's orange and vermillion, the usual warning colours.
WARN = "#E69F00"
ALERT = "#D55E00"


def colour_of(label: str | None, classes: tuple[str, ...] = ()) -> str:
    """The colour of a class of the model whose classes are ``classes``; the no-speech grey for ``None``.

    The seven emotions keep their fixed colours; another class takes the colour of its place among the model's
    other classes, so every class of a model has a colour of its own.
    """
    if not label:
        return NO_SPEECH_COLOUR
    if label in EMOTION_COLOURS:
        return EMOTION_COLOURS[label]
    others = [c for c in classes if c not in EMOTION_COLOURS]
    if label not in others:
        return NO_SPEECH_COLOUR
    return OTHER_CLASS_COLOURS[others.index(label) % len(OTHER_CLASS_COLOURS)]
