"""Untrusted text (titles, model output, user input, error messages) made inert for a terminal.

Such text is never parsed as rich markup (it becomes a :class:`rich.text.Text`), and terminal
escape sequences and control characters are removed from it first, so that a catalog title or a
model reason cannot style, link, blink, move the cursor or rewrite the screen.
"""

from __future__ import annotations

import re

from rich.text import Text

# ESC-introduced sequences: CSI (colours, cursor), OSC (hyperlinks, titles; ended by BEL or ST or
# never), DCS/SOS/PM/APC strings, and two-character escapes; and their 8-bit C1 forms.
_SEQUENCES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?"
    r"|\x1b\][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[PX^_][^\x1b\x9c]*(?:\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
    r"|\x9b[0-?]*[ -/]*[@-~]?"
    r"|[\x90\x98\x9d\x9e\x9f][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
)
# Remaining C0/C1 controls except tab and newline, DEL, and the bidirectional overrides and
# isolates that make text display in another order than it is stored.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# Lone surrogates (from undecodable input, or a model's "\ud800" JSON escape) cannot be written to a
# UTF-8 terminal: shown as the replacement character.
_SURROGATES = re.compile("[\ud800-\udfff]")


def clean(text: object) -> str:
    """``text`` as a string without terminal escape sequences or control characters (tab and
    newline kept), and with lone surrogates replaced."""
    return _SURROGATES.sub("\ufffd", _CONTROLS.sub("", _SEQUENCES.sub("", str(text))))


def one_line(text: object) -> str:
    """:func:`clean` text with every run of whitespace (newlines too) made one space."""
    return " ".join(clean(text).split())


def plain(text: object, style: str = "") -> Text:
    """Untrusted text as a rich Text: printed literally, never interpreted as markup."""
    return Text(clean(text), style=style)


__all__ = ["clean", "one_line", "plain"]
