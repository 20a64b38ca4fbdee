"""Prompt templates live as files in ``prompts/``; each is versioned by the hash of its content.

A template file has a ``### system`` and a ``### user`` section; ``$name`` placeholders are filled
with :class:`string.Template`. Untrusted text (item and user data) only enters through
:func:`as_data`, inside delimiters that the system prompt tells the model to treat as data.
"""

from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass
from functools import cache
from pathlib import Path

_SECTION = re.compile(r"^###\s*(system|user)\s*$", re.MULTILINE)
_INVISIBLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def prompt_dir() -> Path:
    """Templates shipped in the wheel (``promptrec/_prompts``), else the source tree's ``prompts/``."""
    installed = Path(__file__).parent / "_prompts"
    return installed if installed.is_dir() else Path(__file__).parent.parent / "prompts"


@dataclass(frozen=True)
class PromptTemplate:
    """A chat prompt with a system and a user part."""

    name: str
    system: str
    user: str
    hash: str

    def render(self, **values: str) -> list[dict[str, str]]:
        """The chat messages with every ``$placeholder`` filled (a missing one raises KeyError)."""
        return [
            {"role": "system", "content": string.Template(self.system).substitute(values)},
            {"role": "user", "content": string.Template(self.user).substitute(values)},
        ]


def parse_template(name: str, text: str) -> PromptTemplate:
    parts = _SECTION.split(text)
    sections = {parts[i]: parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}
    if set(sections) != {"system", "user"}:
        raise ValueError(f"prompt {name!r} needs exactly one '### system' and one '### user' section")
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    return PromptTemplate(name=name, system=sections["system"], user=sections["user"], hash=digest)


@cache
def load_prompt(name: str) -> PromptTemplate:
    """Load ``prompts/<name>.md``."""
    path = prompt_dir() / f"{name}.md"
    if not path.exists():
        raise FileNotFoundError(f"no prompt template {path}")
    return parse_template(name, path.read_text(encoding="utf-8"))


def as_data(text: str, limit: int = 600) -> str:
    """Make untrusted text safe to put between data delimiters: no angle brackets, no control or
    direction-changing characters, bounded length."""
    text = " ".join(_INVISIBLE.sub(" ", str(text)).split())
    text = text.replace("<", "‹").replace(">", "›")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def max_length(model: type, field: str) -> int:
    """The ``maxLength`` a pydantic model's JSON schema sets on a string field."""
    return model.model_json_schema()["properties"][field]["maxLength"]


def finish_sentence(text: str, limit: int) -> str:
    """Model text, with whitespace runs made single spaces; text that the schema's length limit
    cut off (it is ``limit`` characters long) ends at its last whole clause (or word, with '…').

    Text shorter than ``limit`` ended where the model ended it and is kept whole.
    """
    cut_off = len(text) >= limit
    text = " ".join(text.split())
    if not cut_off or not text or text[-1] in ".!?)…" or text[-2:] in {'."', ".'", '!"', '?"'}:
        return text
    cut = max(text.rfind(", "), text.rfind("; "), text.rfind(": "), text.rfind(" - "))
    if cut >= len(text) // 2:
        return text[:cut].rstrip(" ,;:-") + "."
    return text.rsplit(" ", 1)[0].rstrip(" ,;:-") + "…" if " " in text else text
