"""Every scorer passes the shared interface contract (promptrec.collab.testing)."""

import numpy as np
import pytest

from promptrec.collab import COMPONENTS, ItemItemScorer, classic_blend, make_scorer
from promptrec.collab.testing import check_scorer_contract, synthetic_interactions
from promptrec.evaluation.splits import protocol_a_split


@pytest.fixture(scope="module")
def split():
    return protocol_a_split(synthetic_interactions(), k=3)


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_component_contract(split, name):
    check_scorer_contract(make_scorer(name), split)


def test_blend_contract(split):
    check_scorer_contract(classic_blend(), split)


@pytest.mark.parametrize(
    "name", sorted(n for n, c in COMPONENTS.items() if issubclass(c, ItemItemScorer))
)
def test_item_item_contributions_add_up_to_the_score(split, name):
    scorer = make_scorer(name).fit(split.fit_matrix("test"), *split.sequences("test"))
    history = split.history(3, "test")
    scores = scorer.score_one(history)
    for item in (0, 7, int(split.test_target[3])):
        assert scorer.contributions(history, item).sum() == pytest.approx(scores[item])


def test_popularity_has_no_contributions(split):
    scorer = make_scorer("popularity").fit(split.fit_matrix("test"))
    assert scorer.contributions(split.history(0, "test"), 1) is None


def test_unfitted_scorer_says_so():
    with pytest.raises(RuntimeError, match="not fitted"):
        make_scorer("ease").score_one(np.array([1, 2]))


def test_unknown_names_and_params_are_refused():
    with pytest.raises(ValueError, match="unknown scorer"):
        make_scorer("svd")
    with pytest.raises(ValueError):
        make_scorer("ease", lambda_=-1.0)
    with pytest.raises(ValueError):
        make_scorer("ease", lamda=3.0)


def test_with_score_params_shares_the_fit_and_refuses_fit_params(split):
    ease = make_scorer("ease", lambda_=5.0).fit(split.fit_matrix("test"))
    recent = ease.with_score_params(half_life=1.0)
    assert recent.similarity_ is ease.similarity_ and ease.config.half_life is None
    history = split.history(0, "test")
    assert not np.allclose(recent.score_one(history), ease.score_one(history))
    fresh = make_scorer("ease", lambda_=5.0, half_life=1.0).fit(split.fit_matrix("test"))
    np.testing.assert_allclose(recent.score_one(history), fresh.score_one(history))
    with pytest.raises(ValueError, match="refit"):
        ease.with_score_params(lambda_=10.0)
