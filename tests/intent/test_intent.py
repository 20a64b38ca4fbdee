"""Intent understanding: rule parser, title resolution, the model's reading and its fallback."""

from __future__ import annotations

import pytest

from promptrec.data import Catalog, Item
from promptrec.intent import Intent, IntentParser, RuleIntentParser, TitleResolver, intent_schema
from promptrec.llm import LLMCache, LLMClient, ScriptedLLM


def movie(item_id: str, title: str, genres: str) -> Item:
    return Item(item_id=item_id, title=title, fields={"genres": genres})


@pytest.fixture
def catalog() -> Catalog:
    return Catalog([
        movie("1", "Toy Story (1995)", "Adventure, Animation, Children, Comedy, Fantasy"),
        movie("6", "Heat (1995)", "Action, Crime, Thriller"),
        movie("2571", "Matrix, The (1999)", "Action, Sci-Fi, Thriller"),
        movie("1258", "Shining, The (1980)", "Horror"),
        movie("1387", "Jaws (1975)", "Action, Horror"),
        movie("2081", "Little Mermaid, The (1989)", "Animation, Children, Comedy, Musical, Romance"),
        movie("1411", "Hamlet (1996)", "Crime, Drama, Romance"),
        movie("3598", "Hamlet (2000)", "Crime, Drama, Romance, Thriller"),
        movie("4246", "Bridget Jones's Diary (2001)", "Comedy, Drama, Romance"),
        movie("9", "Blade Runner (1982)", "Action, Sci-Fi, Thriller"),
    ])


@pytest.fixture
def titles(catalog) -> dict[str, str]:
    return {item.item_id: item.title for item in catalog}


def test_rules_read_genres_audience_and_years(catalog):
    rules = RuleIntentParser(catalog)
    kids = rules.parse("animated movies for small children")
    assert kids.genres == ["Animation"] and kids.audience == "kids" and kids.text == ""
    eighties = rules.parse("no horror, something from the 80s")
    assert eighties.exclude_genres == ["Horror"] and eighties.genres == []
    assert (eighties.year_min, eighties.year_max) == (1980, 1989)
    scifi = rules.parse("sci-fi thriller before 1990")
    assert set(scifi.genres) == {"Sci-Fi", "Thriller"} and scifi.year_max == 1989 and scifi.year_min is None
    romcom = rules.parse("romantic comedy set in Paris")
    assert set(romcom.genres) == {"Romance", "Comedy"} and "paris" in romcom.text


def test_rules_read_anchors_exclusions_and_moods(catalog):
    rules = RuleIntentParser(catalog)
    lighter = rules.parse("more like Toy Story but lighter")
    assert lighter.anchors == ["1"] and lighter.moods == ["light"]
    assert rules.parse("not Heat").exclude_items == ["6"]
    assert rules.parse("like Matrix but not too violent").anchors == ["2571"]
    assert rules.parse("something funny").moods == ["funny"]
    assert rules.parse("no, older").era == "older"


def test_unknown_title_is_reported_with_suggestions(catalog, titles):
    assert RuleIntentParser(catalog).parse("more like Blade Runer").anchors == ["9"]  # a typo still resolves
    missing = RuleIntentParser(catalog).parse("more like Zzyzx Road")
    assert missing.unresolved == ["Zzyzx Road"] and missing.anchors == []
    assert "no title matches 'Zzyzx Road'" in missing.describe(titles)


def test_title_resolver_exact_article_fuzzy_and_ambiguous(catalog):
    resolver = TitleResolver(catalog)
    assert resolver.resolve("the matrix").item_id == "2571"
    assert resolver.resolve("Matrix").item_id == "2571"
    assert resolver.resolve("Toy Strory").item_id == "1"
    hamlet = resolver.resolve("Hamlet")
    assert hamlet.item_id == "1411" and hamlet.alternatives == ["3598"] and hamlet.ambiguous
    unknown = resolver.resolve("Heet")
    assert unknown.item_id is None and "6" in unknown.alternatives


def test_an_ambiguous_title_says_what_else_it_may_mean(catalog, titles):
    intent = RuleIntentParser(catalog).parse("more like Hamlet")
    assert intent.anchors == ["1411"] and intent.alternatives == {"1411": ["Hamlet (2000)"]}
    assert "Hamlet (1996): or did you mean Hamlet (2000)?" in intent.describe(titles)


def test_allows_enforces_every_hard_filter(catalog):
    items = {item.item_id: item for item in catalog}
    kids = Intent(audience="kids")
    assert kids.allows(items["1"]) and not kids.allows(items["6"]) and not kids.allows(items["1387"])
    both = Intent(genres=["Romance", "Comedy"])
    assert both.allows(items["4246"]) and not both.allows(items["1411"])
    window = Intent(year_min=1980, year_max=1989, exclude_genres=["Horror"], exclude_items=["9"])
    assert window.allows(items["2081"])
    assert not window.allows(items["1258"])  # horror
    assert not window.allows(items["9"])  # excluded item
    assert not window.allows(items["1"])  # 1995
    assert Intent().allows(items["1258"])


def test_refine_keeps_the_previous_intent_and_makes_older_concrete():
    first = Intent(genres=["Comedy"], moods=["light"], exclude_genres=["Horror"])
    refined = first.refine(Intent(era="older"), shown_years=[1995, 1999, 2001, 2004, 2010])
    assert refined.genres == ["Comedy"] and refined.moods == ["light"] and refined.exclude_genres == ["Horror"]
    assert refined.year_max == 2000 and refined.year_min is None and refined.era is None
    newer = first.refine(Intent(era="newer", exclude_genres=["Drama"]), shown_years=[1980, 1990, 2000])
    assert newer.year_min == 1991 and newer.exclude_genres == ["Horror", "Drama"]


def test_describe_says_what_was_understood(titles):
    intent = Intent(genres=["Animation", "Children"], exclude_genres=["Horror"], moods=["light"], anchors=["1"])
    assert intent.describe(titles) == ("understood: like Toy Story (1995); genres Animation, Children; "
                                       "excluding Horror; mood: light")
    assert Intent().describe() == "understood: nothing specific"


def model_parser(catalog, *replies) -> tuple[IntentParser, ScriptedLLM]:
    backend = ScriptedLLM(*replies)
    return IntentParser(catalog, LLMClient(backend, LLMCache(None))), backend


def reply(**fields) -> dict:
    base = {"like_titles": [], "exclude_titles": [], "genres": [], "exclude_genres": [], "year_min": None,
            "year_max": None, "audience": None, "era": None, "moods": [], "themes": [], "text": ""}
    return {**base, **fields}


def test_model_reading_is_resolved_validated_and_cached(catalog):
    parser, backend = model_parser(catalog, reply(like_titles=["the matrix"], genres=["sci-fi", "Western"],
                                                  year_min=1999, year_max=1980, moods=["Tense"], themes=["virtual reality"]))
    request = "a sci-fi film like the matrix about virtual worlds, tense, made between 1980 and 1999"
    intent = parser.parse(request)
    assert intent.source == "llm" and intent.anchors == ["2571"]
    assert intent.genres == ["Sci-Fi"]  # 'Western' is not a catalog genre of this catalog: dropped
    assert (intent.year_min, intent.year_max) == (1980, 1999)  # swapped into order
    assert intent.moods == ["tense"] and intent.themes == ["virtual reality"]
    prompt = backend.requests[0].messages[1]["content"]
    assert "<request>" in prompt and "the matrix" in prompt
    schema = backend.requests[0].json_schema
    assert "Sci-Fi" in schema["properties"]["genres"]["items"]["enum"]
    assert parser.parse(request) == intent
    assert len(backend.requests) == 1  # the second reading came from the cache


def test_model_parts_the_request_does_not_support_are_dropped(catalog):
    # what SmolLM2-135M replied for "a dark horror film from the 80s"
    parser, _ = model_parser(catalog, reply(genres=["Adventure"], exclude_genres=["Action", "Animation"], audience="kids",
                                            year_min=1999, year_max=2022, moods=["light", "dark", "scary"],
                                            like_titles=["Jaws"], themes=["The Night Circus 2018"],
                                            text="anything else the request asks for"))
    intent = parser.parse("a dark horror film")
    assert intent.source == "llm"
    assert intent.genres == ["Horror"]  # from the rules; the model's 'Adventure' is not in the request
    assert intent.exclude_genres == [] and intent.audience is None and intent.anchors == []
    assert (intent.year_min, intent.year_max) == (None, None)
    assert intent.moods == ["dark"] and intent.themes == [] and intent.text == ""
    assert intent.ungrounded >= 8


def test_a_genre_the_request_asks_for_is_never_taken_as_refused(catalog):
    # SmolLM2 put the genres of 'a action, crime, thriller movie' into exclude_genres (Protocol C)
    parser, _ = model_parser(catalog, reply(genres=["Horror"], exclude_genres=["Crime", "Thriller"]))
    intent = parser.parse("an action, crime, thriller movie, nothing with horror")
    assert intent.exclude_genres == ["Horror"]
    assert set(intent.genres) == {"Action", "Crime", "Thriller"}


def test_rule_exclusions_survive_a_model_misreading(catalog):
    parser, _ = model_parser(catalog, reply(genres=["Horror"]))
    intent = parser.parse("no horror please, not Heat")
    assert "Horror" in intent.exclude_genres and "Horror" not in intent.genres
    assert "6" in intent.exclude_items


def test_model_failure_falls_back_to_rules_and_says_so(catalog):
    parser, _ = model_parser(catalog, "this is not json")
    intent = parser.parse("animated movies for small children")
    assert intent.source == "rules" and intent.audience == "kids" and intent.genres == ["Animation"]
    assert intent.error and "invalid output" in intent.error


def test_schema_has_no_empty_enum_without_genres():
    schema = intent_schema([])
    assert "genres" not in schema["properties"] and "exclude_genres" not in schema["properties"]
    assert set(schema["required"]) == set(schema["properties"])
    with_genres = intent_schema(["Comedy"])
    assert with_genres["properties"]["genres"]["items"]["enum"] == ["Comedy"]
