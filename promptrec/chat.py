"""A multi-turn conversation over a :class:`Recommender`: pick a user or describe tastes, steer
with free text ("more like Heat but lighter"), exclude items, ask why something was suggested."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from .inputs import valid_text
from .intent import Intent, item_year
from .pipeline import Recommender, UnknownItems, UnknownUser
from .types import RecommendationList, StreamEvent

ChatEvent = Callable[[str, object], None]

HELP = """Commands:
  /user ID          talk about a user from the data (e.g. /user 1)
  /like TITLE       add an item you like (builds your own history when no user is picked)
  /exclude TITLE    never suggest this item (also: "exclude X", "not X")
  /why N|TITLE      why was this suggested? (also: "why X?", "why #3")
  /k N              how many suggestions to show (now {k})
  /reset            forget the user, likes, exclusions and request
  /help             this help
  /quit             leave
Anything else is a request that steers the suggestions, e.g. "more like Toy Story but scarier"."""

_WHY = re.compile(r"^why(?: did you (?:suggest|recommend|pick)| is| was)?\s+(?P<what>.+?)\??$", re.I)
_EXCLUDE = re.compile(r"^(?:exclude|hide)\s+(?P<title>.+?)\.?$", re.I)
_FOLLOW_UP = re.compile(r"^(?:no|nope|not|but|and|also|only|more|less|make it|now|actually|instead|rather|older|newer|"
                        r"lighter|darker|funnier|scarier|without|except|same|similar)\b", re.I)


def _is_number(text: str) -> bool:
    """ASCII digits only: str.isdigit() also accepts '²' and other digits int() refuses."""
    return text.isascii() and text.isdigit() and len(text) <= 6


@dataclass
class ChatReply:
    """What the session answers: text, and the recommendations when there are new ones."""

    text: str = ""
    recommendations: RecommendationList | None = None
    quit: bool = False


@dataclass
class ChatSession:
    """The state of one conversation."""

    recommender: Recommender
    user_id: str | None = None
    liked: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    request: str | None = None
    intent: Intent | None = None
    k: int = 5
    last: RecommendationList | None = None
    on_event: ChatEvent | None = field(default=None, repr=False, compare=False)

    def handle(self, line: str, on_event: ChatEvent | None = None) -> ChatReply:
        """Answer one line. With ``on_event``, an answer with recommendations is also told as it
        is made: ``on_event("list", ChatReply)`` (the reply text and the ranked list, reasons
        pending) as soon as the order is known, then ``on_event("reason", Recommendation)`` per
        item as the model writes its reason; the returned reply holds the finished list."""
        self.on_event = on_event
        try:
            return self._handle(line)
        finally:
            self.on_event = None

    def _handle(self, line: str) -> ChatReply:
        line = valid_text(line).strip()
        if not line:
            return ChatReply("Say what you are in the mood for, or /help.")
        if line.startswith("/"):
            command, _, arg = line[1:].partition(" ")
            return self._command(command.lower(), arg.strip())
        if match := _WHY.match(line):
            return self._why(match["what"])
        if match := _EXCLUDE.match(line):
            return self._exclude(match["title"])
        return self._steer(line)

    def _steer(self, line: str) -> ChatReply:
        """A free-text request; a follow-up ("no, older") refines the previous one instead of starting over.

        The list is shown from the rules' reading at once; the model's reading (when a model reads
        requests) follows and replaces the list when it changes it (see ``Engine.recommend_stream``)."""
        previous, follow_up = self.intent, self.intent is not None and _FOLLOW_UP.match(line)
        catalog = self.recommender.dataset.catalog
        years = [y for r in (self.last.items if self.last else []) if (y := item_year(catalog[r.item_id])) is not None]

        def combine(understood: Intent) -> Intent:
            return previous.refine(understood, shown_years=years) if follow_up else understood

        quick = self.recommender.understand(line, model=False)
        self.intent = combine(quick)
        self.request = f"{self.request}; {line}" if follow_up and self.request else line
        refine = (lambda: combine(self.recommender.understand(line))) if self.recommender.engine.needs_model(quick) else None
        return self._recommend(None, refine)

    def _command(self, command: str, arg: str) -> ChatReply:
        if command in ("quit", "exit", "q"):
            return ChatReply("Bye.", quit=True)
        if command in ("help", "h", "?"):
            return ChatReply(HELP.format(k=self.k))
        if command == "user":
            if not arg:
                return ChatReply("Usage: /user ID")
            try:
                self.recommender.history(arg)
            except UnknownUser as err:
                return ChatReply(str(err))
            self.user_id, self.liked, self.request, self.intent = arg, [], None, None
            return self._recommend(f"Now recommending for user {arg}")
        if command == "like":
            try:
                self.liked += [i for i in self.recommender.resolve_items([arg]) if i not in self.liked]
            except UnknownItems as err:
                return ChatReply(str(err))
            return self._recommend(f"Noted that you like {self.recommender.dataset.catalog[self.liked[-1]].title}")
        if command == "exclude":
            return self._exclude(arg)
        if command == "why":
            return self._why(arg)
        if command == "k":
            if not _is_number(arg) or not 1 <= int(arg) <= 50:
                return ChatReply("Usage: /k N with N from 1 to 50")
            self.k = int(arg)
            return self._recommend(None)
        if command == "reset":
            self.user_id, self.liked, self.excluded, self.request, self.intent, self.last = None, [], [], None, None, None
            return ChatReply("Forgotten. Pick a /user or tell me what you like.")
        return ChatReply(f"Unknown command /{command}. Type /help.")

    def _exclude(self, title: str) -> ChatReply:
        try:
            items = self.recommender.resolve_items([title])
        except UnknownItems as err:
            return ChatReply(str(err))
        self.excluded += [i for i in items if i not in self.excluded]
        self.liked = [i for i in self.liked if i not in items]
        return self._recommend(f"Excluded {self.recommender.dataset.catalog[items[0]].title}")

    def _why(self, what: str) -> ChatReply:
        if self.last is None or not self.last.items:
            return ChatReply("Nothing suggested yet.")
        what = what.strip().lstrip("#")
        chosen = None
        if _is_number(what) and 1 <= int(what) <= len(self.last.items):
            chosen = self.last.items[int(what) - 1]
        else:
            found = self.recommender.dataset.catalog.find(what)
            chosen = next((r for r in self.last.items if found and r.item_id == found.item_id), None)
        if chosen is None:
            return ChatReply(f"{what!r} is not among the current suggestions.")
        catalog = self.recommender.dataset.catalog
        cited = ", ".join(catalog[i].title for i in chosen.cited_history if i in catalog) or "no specific item"
        return ChatReply(f"{chosen.title}: {chosen.explanation} (based on: {cited})")

    def _recommend(self, headline: str | None, refine: Callable[[], Intent] | None = None) -> ChatReply:
        if self.user_id is None and not self.liked and not self.request:
            return ChatReply((headline + ". " if headline else "") + "Pick a /user, /like an item, or describe what you want.")
        on_event = self.on_event

        def relay(event: StreamEvent) -> None:
            if on_event is None:
                return
            if event.kind == "list":
                on_event("list", ChatReply(self._text(headline, event.result), event.result))
            elif event.kind == "reason":
                on_event("reason", event.item)

        if self.user_id is not None:
            result = self.recommender.recommend(self.user_id, k=self.k, request=self.request, exclude=self.excluded,
                                                like=self.liked, intent=self.intent, on_event=relay, refine=refine)
        else:
            result = self.recommender.recommend_for_history(self.liked, k=self.k, request=self.request,
                                                            exclude=self.excluded, intent=self.intent, on_event=relay,
                                                            refine=refine)
        if result.intent is not None:
            self.intent = Intent.model_validate(result.intent)  # the reading the list was made from (the model's)
        self.last = result
        return ChatReply(self._text(headline, result), result)

    @staticmethod
    def _text(headline: str | None, result: RecommendationList) -> str:
        lines = [headline] if headline else []
        if result.understood:
            lines.append(result.understood)
        if not result.items:
            lines.append("Nothing in the catalog matches all of that; loosen a filter or /reset.")
        return "\n".join(lines)
