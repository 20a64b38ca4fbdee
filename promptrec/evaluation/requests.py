"""Protocol C requests: for each user, a request that describes the held-out target without naming it.

Three variants per target, all written from the target's metadata (genres, user tags, decade) and,
when they exist, its model features (themes, mood) — never from its title, people or exact year:

- ``templated``: "a comedy, romance movie from the 1990s, about new york, friendship";
- ``vague``: one attribute ("a comedy");
- ``model``: written by the language model like a person would type it, rejected (and replaced by
  the templated request, counted) when it contains a word of the title or a year.

The requests are generated once and stored in a JSONL file named by the dataset, the model and the
prompt hash, so a rerun (by anyone) scores the very same requests.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from ..data import Item
from ..intent import item_year
from ..knowledge import FeatureStore
from ..llm import LLMClient
from ..prompts import as_data, load_prompt
from ..records import RecordLog

VARIANTS = ("templated", "vague", "model")
_STOP = {"the", "a", "an", "of", "and", "in", "on", "to", "for", "with", "la", "le", "les", "de", "der", "die", "das",
         "el", "il", "ii", "iii", "part", "movie", "film", "story"}


class Attributes(BaseModel):
    """What a request may say about its target."""

    genres: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    decade: int | None = None
    themes: list[str] = Field(default_factory=list)
    mood: str | None = None


class WrittenRequest(BaseModel):
    """One request for one user's target."""

    user: str
    stage: str
    target: str
    variant: str
    text: str
    attributes: Attributes
    rejected: str | None = Field(None, description="Why the model's request was replaced by the templated one.")


class RequestReply(BaseModel):
    request: str = Field(min_length=5, max_length=240)


def title_words(title: str) -> set[str]:
    """The words of a title a request must not contain (years, articles and short words aside)."""
    bare = re.sub(r"\(\d{4}[^)]*\)", " ", title)
    bare = re.sub(r"\(a\.k\.a\.[^)]*\)|\(.*?\)", lambda m: " " + m.group(0)[1:-1] + " ", bare)
    return {w for w in re.findall(r"[a-z0-9]+", bare.lower()) if len(w) >= 3 and w not in _STOP}


def leak(text: str, item: Item, genres: set[str] | None = None) -> str | None:
    """Why ``text`` gives the target away (a title word or an exact year), or None.

    Title words that are also the item's genres or tags ("Alien" is not, "War" for a war film is)
    do not count: a request may say what kind of item it wants.
    """
    words = set(re.findall(r"[a-z0-9]+", text.lower()))
    allowed = genres or set()
    named = (title_words(item.title) & words) - allowed
    if named:
        return f"names title words {sorted(named)}"
    if re.search(r"\b(1[89]|20)\d\d\b", text):
        return "names an exact year"
    return None


def attributes(item: Item, store: FeatureStore | None, n_tags: int = 3) -> Attributes:
    """The target's describable attributes; tags that give away the title are left out."""
    forbidden = title_words(item.title)
    genres = [g.strip() for g in item.fields.get("genres", "").replace("|", ",").split(",") if g.strip()]
    tags = [t.strip() for t in item.fields.get("tags", "").split(",") if t.strip()]
    tags = [t for t in tags if not set(re.findall(r"[a-z0-9]+", t.lower())) & forbidden
            and not re.search(r"\b(1[89]|20)\d\d\b", t)][:n_tags]
    year = item_year(item)
    features = store.get(item.item_id) if store is not None else None
    themes = [t for t in (features.themes if features else []) if not set(re.findall(r"[a-z0-9]+", t.lower())) & forbidden]
    return Attributes(genres=genres, tags=tags, decade=(year // 10) * 10 if year else None,
                      themes=themes[:3], mood=features.mood if features else None)


def templated(attrs: Attributes) -> str:
    """A request built from every attribute: genres, decade, tags and themes."""
    text = f"a {', '.join(g.lower() for g in attrs.genres) or 'good'} movie"
    if attrs.decade:
        text += f" from the {attrs.decade}s"
    about = [*attrs.tags, *attrs.themes]
    if about:
        text += f", about {', '.join(about)}"
    if attrs.mood:
        text += f", {attrs.mood.lower()}"
    return text


def vague(attrs: Attributes, rng: np.random.Generator) -> str:
    """A request with one attribute: a genre (or, without genres, a tag or the decade)."""
    if attrs.genres:
        return f"a {attrs.genres[int(rng.integers(len(attrs.genres)))].lower()} movie"
    if attrs.tags:
        return f"something about {attrs.tags[0]}"
    return f"a movie from the {attrs.decade}s" if attrs.decade else "a good movie"


def describe_for_model(attrs: Attributes) -> str:
    lines = [f"genres: {', '.join(attrs.genres) or 'unknown'}"]
    if attrs.tags:
        lines.append(f"user tags: {', '.join(attrs.tags)}")
    if attrs.themes:
        lines.append(f"themes: {', '.join(attrs.themes)}")
    if attrs.mood:
        lines.append(f"mood: {attrs.mood}")
    if attrs.decade:
        lines.append(f"decade: the {attrs.decade}s")
    return as_data("; ".join(lines), limit=500)


class RequestWriter:
    """Writes the three request variants for (user, target) pairs and keeps them in a JSONL file.

    Args:
        path: The request file (resumable: requests already written are reused, never rewritten).
        client: The model for the ``model`` variant (None: only templated and vague).
        features: Item features for themes and mood (None: metadata only).
        seed: Seeds the vague variant's choice of attribute.
    """

    template_name = "write_request"

    def __init__(self, path: Path, client: LLMClient | None, features: FeatureStore | None = None, seed: int = 0) -> None:
        self.log = RecordLog(path, WrittenRequest, key=lambda r: (r.stage, r.user, r.variant))
        self.client = client
        self.features = features
        self.seed = seed
        self.template = load_prompt(self.template_name)

    def _model_request(self, item: Item, attrs: Attributes, fallback: str) -> tuple[str, str | None]:
        result = self.client.generate(self.template, RequestReply, {"item": describe_for_model(attrs)}, max_tokens=120)
        if result.value is None:
            return fallback, f"no valid reply ({result.error})"
        text = " ".join(result.value.request.split())
        why = leak(text, item, {g.lower() for g in attrs.genres})
        return (fallback, why) if why else (text, None)

    def write(self, pairs: Sequence[tuple[str, str, Item]], variants: Sequence[str] = VARIANTS,
              progress: Callable[[int], None] | None = None) -> list[WrittenRequest]:
        """Requests for every (stage, user, target item); those already in the file are reused."""
        done = self.log.load()
        out = []
        for stage, user, item in pairs:
            attrs = attributes(item, self.features)
            rng = np.random.default_rng([self.seed, int(hashlib.sha256(f'{stage}:{user}'.encode()).hexdigest()[:8], 16)])
            for variant in variants:
                key = (stage, user, variant)
                if key in done and done[key].target == item.item_id:
                    out.append(done[key])
                    continue
                rejected = None
                if variant == "templated":
                    text = templated(attrs)
                elif variant == "vague":
                    text = vague(attrs, rng)
                elif self.client is None:
                    continue
                else:
                    text, rejected = self._model_request(item, attrs, templated(attrs))
                record = WrittenRequest(user=user, stage=stage, target=item.item_id, variant=variant, text=text,
                                        attributes=attrs, rejected=rejected)
                self.log.append(record)
                out.append(record)
            if progress:
                progress(1)
        return out
