"""Untrusted text (titles, reasons, cited titles, profiles, requests, ids, errors) is printed
literally: never parsed as rich markup, and terminal escape sequences are removed."""

import io
import re

import pytest
from rich.console import Console

from promptrec.cli.render import print_result
from promptrec.cli.safe_text import clean, one_line, plain
from promptrec.data import Catalog, Item
from promptrec.types import ProfileResult, Recommendation, RecommendationList, UserProfile

HOSTILE = ["[/dim]", "[link=http://evil.example]x[/link]", "[blink]b[/blink]", "\x1b[31mred",
           "\x1b]8;;http://evil.example\x07y\x1b]8;;\x07", "[bold]"]
VISIBLE = ["[/dim]", "[link=http://evil.example]x[/link]", "[blink]b[/blink]", "red", "y", "[bold]"]


def hostile(prefix: str) -> str:
    return prefix + " " + " ".join(HOSTILE)


def forced_colour_console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(force_terminal=True, color_system="truecolor", file=out, width=1000), out


def result_and_catalog():
    catalog = Catalog([Item(item_id="1", title=hostile("Seen")), Item(item_id="2", title=hostile("Pick"))])
    profile = ProfileResult(profile=UserProfile(likes=["[blink]b[/blink]"], dislikes=[], recent_interests=[],
                                                summary=hostile("Profile")), source="llm", history_used=1)
    rec = Recommendation(item_id="2", title=hostile("Pick"), rank=1, score=1.0, explanation=hostile("Reason"),
                         cited_history=["1"], explained_by="llm")
    result = RecommendationList(user_id=hostile("user"), items=[rec], ordered_by="fusion", fallback=True,
                                fallback_reason=hostile("fallback"), request=hostile("Request"), profile=profile,
                                model_id=hostile("model"))
    return result, catalog


def assert_inert(text: str) -> None:
    assert "\x1b]8;" not in text, "an OSC 8 hyperlink reached the terminal"
    assert "\x1b[5m" not in text and ";5m" not in text and "\x1b[5;" not in text, "blink reached the terminal"
    assert "\x1b[31m" not in text, "an injected colour reached the terminal"
    assert "\x07" not in text and "\x1b]" not in text


def test_result_with_markup_and_escapes_renders_literally():
    console, out = forced_colour_console()
    result, catalog = result_and_catalog()
    print_result(console, result, catalog)
    raw = out.getvalue()
    assert_inert(raw)
    for prefix in ("Pick", "Reason", "Profile", "Request", "user", "fallback", "model"):
        assert f"{prefix} " in raw
    for literal in VISIBLE:
        # table title (user), title, reason, cited title, caption (fallback), profile, request, model line
        assert raw.count(literal) >= 8, (literal, raw.count(literal))
    assert "cites: Seen [/dim]" in raw


def test_every_escape_in_the_output_is_one_rich_made_itself():
    console, out = forced_colour_console()
    result, catalog = result_and_catalog()
    print_result(console, result, catalog)
    raw = out.getvalue()
    # rich writes only SGR sequences (ESC [ ... m); anything else would be injected
    leftovers = re.sub(r"\x1b\[[0-9;]*m", "", raw)
    assert "\x1b" not in leftovers and "\x9b" not in leftovers


@pytest.mark.parametrize(("text", "expected"), [
    ("a\x1b[31mb\x1b[0mc", "abc"),
    ("a\x1b]8;;http://e\x07b\x1b]8;;\x07c", "abc"),
    ("a\x1b]8;;http://e\x1b\\b\x1b]8;;\x1b\\c", "abc"),
    ("a\x1b]0;title", "a"),
    ("a\x1bPpayload\x1b\\b", "ab"),
    ("a\x9b31mb", "ab"),
    ("a\x1bcb", "ab"),
    ("tab\tand\nnewline", "tab\tand\nnewline"),
    ("bell\x07 bs\x08 cr\r nul\x00 del\x7f", "bell bs cr nul del"),
    ("evil\u202eoc.exe", "eviloc.exe"),
    ("[/dim] [link=x]y[/link]", "[/dim] [link=x]y[/link]"),
])
def test_clean_removes_escapes_and_controls(text, expected):
    assert clean(text) == expected


def test_one_line_joins_lines():
    assert one_line("first\nsecond\r\n  third\x1b[2J") == "first second third"


def test_lone_surrogates_are_shown_as_replacement_characters():
    console, out = forced_colour_console()
    console.print(plain("model said \ud800 and \udcff"))
    assert "model said \ufffd and \ufffd" in out.getvalue()
    out.getvalue().encode("utf-8")  # writable to a UTF-8 terminal
