import pytest

from promptrec.knowledge.degenerate import REASONS, FeatureCheck, degenerate_features, looping, prompt_instructions
from promptrec.prompts import load_prompt
from promptrec.types import ItemFeatures

GOOD = {"themes": ["toys that come alive", "friendship", "jealousy"], "mood": "warm and funny",
        "audience": "families with young children",
        "description": "A cowboy doll feels replaced when a flashy space ranger toy arrives."}


def features(**changes) -> ItemFeatures:
    return ItemFeatures(**{**GOOD, **changes})


def check() -> FeatureCheck:
    return FeatureCheck(prompt_instructions(load_prompt("item_features")))


def test_plausible_features_pass():
    assert check()(features(), "Toy Story (1995) | genres: Adventure, Animation") is None


@pytest.mark.parametrize(("changes", "reason"), [
    ({"themes": ["Documentary"] * 5}, "repeated themes"),
    ({"themes": ["Space", "space!", "war"]}, "repeated themes"),
    ({"mood": "Children", "audience": "children"}, "repeated fields"),
    ({"themes": ["fantasy", "adventure"], "mood": "Fantasy", "audience": "adventure"}, "repeated fields"),
    ({"themes": ["fantasy", "a quest"], "description": "A quest"}, "repeated fields"),
    ({"description": "A film about fantasy characters who are male fantasy characters who are male fantasy "
                     "characters who are male fantasy characters"}, "looping description"),
    ({"description": "its mood or tone, in a few words"}, "copied from the prompt"),
    ({"audience": "who would enjoy it"}, "copied from the prompt"),
    ({"themes": ["short phrases naming what the item"]}, "copied from the prompt"),
    ({"mood": "  ..."}, "empty field"),
])
def test_degenerate_features_are_named(changes, reason):
    assert reason in REASONS
    assert check()(features(**changes)) == reason


def test_description_that_only_repeats_the_item_text_is_copied():
    text = "Heat (1995) | genres: Action, Crime, Thriller"
    assert degenerate_features(features(description="Heat (1995) | genres: Action, Crime, Thriller"), text) == \
        "copied from the prompt"
    assert degenerate_features(features(), text) is None


def test_looping_thresholds():
    assert looping("who are male, who are male, who are male")
    assert not looping("who are male, who are male")  # twice is not a loop
    assert looping("big " * 12)
    assert not looping("A retired thief plans one last heist while a detective closes in on his crew.")


def test_function_without_instructions_skips_only_the_copy_rule():
    assert degenerate_features(features(audience="who would enjoy it")) is None
    assert degenerate_features(features(themes=["a", "A"])) == "repeated themes"


TOY = "Toy Story (1995). genres: Adventure, Animation. tags: pixar, fun, toys come alive, buddy movie"


@pytest.mark.parametrize("changes", [
    {"themes": ["themes", "mood", "friendship"]},                  # the schema's field names
    {"themes": ["Toy Story (1995)", "friendship"]},                # the title, with its year
    {"description": "Toy Story"},                                  # the title alone
    {"description": "genres: Adventure, Animation"},               # a piece of the item's text
    {"mood": "pixar, fun, toys come alive"},                       # the tag list
])
def test_features_that_copy_the_item_are_rejected(changes):
    assert check()(features(**changes), TOY, "Toy Story (1995)") == "copied from the prompt"


def test_naming_the_item_inside_a_real_description_is_fine():
    described = features(description="In Toy Story, a cowboy doll feels replaced by a space ranger toy.")
    assert check()(described, TOY, "Toy Story (1995)") is None


def test_a_mood_that_repeats_one_theme_is_allowed():
    braveheart = features(themes=["action", "drama", "war", "epic"], mood="epic", audience="adventurers, history buffs")
    assert check()(braveheart) is None
