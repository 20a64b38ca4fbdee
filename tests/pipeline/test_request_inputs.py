"""Requests are normalised or refused at the Recommender's entry points: spaces around a user id,
one string given where a list is expected, k below 1."""

import pytest

from promptrec import Recommender
from promptrec.errors import UserInputError
from promptrec.retrieval.store import make_client


@pytest.fixture
def rec(settings, tiny, hash_embedder):
    fusion = settings.fusion.model_copy(update={"weights": {"embedding": 0.5, "ease": 1.0}, "min_item_support": 1})
    settings = settings.model_copy(update={"fusion": fusion})
    return Recommender(settings, dataset=tiny, llm=False, embedder=hash_embedder,
                       chroma_client=make_client(settings.state_dir / "chroma"))


def ids(result):
    return [r.item_id for r in result.items]


def test_a_user_id_with_surrounding_spaces_is_the_same_user(rec):
    plain = rec.recommend("1", k=3)
    spaced = rec.recommend("  1 \t", k=3)
    assert spaced.user_id == "1" and ids(spaced) == ids(plain)
    assert ids(rec.recommend(1, k=3)) == ids(plain)


@pytest.mark.parametrize("user", ["", "   ", None, 1.5, ["1"]])
def test_an_empty_or_odd_user_id_is_refused(rec, user):
    with pytest.raises(UserInputError):
        rec.recommend(user, k=3)


def test_one_string_is_one_history_item_not_its_characters(rec, tiny):
    title = "Crime Thriller 1 (1990)"
    as_list = rec.recommend_for_history([title], k=3)
    as_string = rec.recommend_for_history(title, k=3)
    assert ids(as_string) == ids(as_list)
    assert all("crime" in tiny.catalog[i].fields["genres"] for i in ids(as_string))
    # an id given as one string is one item too (per character, "121" would be three unknown items)
    assert ids(rec.recommend_for_history("121", k=3)) == ids(rec.recommend_for_history(["121"], k=3))


def test_one_string_exclude_is_one_item(rec):
    top = rec.recommend("1", k=3).items[0].item_id
    assert top not in ids(rec.recommend("1", k=3, exclude=top))
    adhoc_top = rec.recommend_for_history(["Crime Thriller 1 (1990)"], k=3).items[0].item_id
    assert adhoc_top not in ids(rec.recommend_for_history(["Crime Thriller 1 (1990)"], k=3, exclude=adhoc_top))


@pytest.mark.parametrize("k", [0, -1, 2.5, "3", True, None])
def test_k_must_be_a_whole_number_of_at_least_one(rec, k):
    with pytest.raises(UserInputError, match="k must be a whole number of at least 1"):
        rec.recommend("1", k=k)
    with pytest.raises(UserInputError, match="k must be"):
        rec.recommend_for_history(["121"], k=k)


def test_a_blank_request_is_no_request_and_a_non_text_one_is_refused(rec):
    assert rec.recommend("1", k=3, request="   ").request is None
    with pytest.raises(UserInputError, match="free text"):
        rec.recommend("1", k=3, request=["comedy"])


def test_a_mapping_is_not_a_list_of_items(rec):
    with pytest.raises(UserInputError, match="list of item ids or titles"):
        rec.recommend_for_history({"121": 5.0}, k=3)


def test_feature_extraction_without_a_model_is_a_user_input_error(rec):
    with pytest.raises(UserInputError, match="needs a language model"):
        rec.index(features=2)


def test_lone_surrogates_in_a_request_or_entry_become_replacement_characters(rec):
    result = rec.recommend("1", k=3, request="\udcff comedies")
    assert result.request == "\ufffd comedies"
    result = rec.recommend_for_history(["Crime Thriller 1 (1990)"], k=3, request="\ud800x")
    assert result.request == "\ufffdx"
