"""The product and its evaluation are one engine: built from the same settings, a user gets the same
fused list and the model gets the same prompts in both."""

import pandas as pd

from promptrec import Recommender
from promptrec.data import Dataset, InteractionLog
from promptrec.evaluation.product import Bench, index_split_items, ratings_by_user, split_catalog, stage_world
from promptrec.evaluation.rerank_eval import rerank_log, run_rerank
from promptrec.evaluation.splits import protocol_a_split
from promptrec.llm import LLMClient, ScriptedLLM
from promptrec.retrieval import ItemVectorStore
from promptrec.retrieval.store import make_client
from promptrec.testing import valid_reply


def test_the_evaluation_measures_what_recommend_runs(settings, tiny, hash_embedder, tmp_path):
    settings = settings.model_copy(update={
        "fusion": settings.fusion.model_copy(update={"weights": {"embedding": 0.3, "ease": 1.0, "classic": 0.5},
                                                     "params": {"ease": {"lambda_": 10.0}}, "min_item_support": 1}),
        # the rerank rows of the evaluation measure the product with the model's order on (rerank.reorder)
        "rerank": settings.rerank.model_copy(update={"depth": 6, "llm_weight": 0.5, "reorder": True}),
        "explain": settings.explain.model_copy(update={"enabled": False}),
        "profile": settings.profile.model_copy(update={"token_budget": 120}),
    })
    split = protocol_a_split(tiny.interactions.frame, k=1)
    catalog = split_catalog(split, tiny)
    # the product as deployed just before each user's test item: every interaction but the last
    frame = tiny.interactions.frame
    targets = {(user, split.items[split.test_target[u]]) for u, user in enumerate(split.users)}
    keep = [(user, item) not in targets for user, item in zip(frame["user_id"], frame["item_id"])]
    before_test = Dataset("before-test", catalog, InteractionLog(frame[keep]), [])
    product_model = ScriptedLLM(default=valid_reply)
    product = Recommender(settings, dataset=before_test, llm=LLMClient(product_model), embedder=hash_embedder,
                          chroma_client=make_client(tmp_path / "product"))

    eval_model = ScriptedLLM(default=valid_reply)
    store = ItemVectorStore(make_client(tmp_path / "eval"), hash_embedder, "split-items")
    index_split_items(store, catalog, product.features)
    bench = Bench(settings, catalog, store, hash_embedder, LLMClient(eval_model), product.features,
                  ratings_by_user(tiny.interactions))
    world = stage_world(split, "test", bench, tmp_path / "collab")

    for u in (0, 4, 7):
        user = split.users[u]
        product_model.requests.clear()
        eval_model.requests.clear()
        assert world.history(u) == product.history(user)
        product.recommend(user, k=4)
        record = run_rerank(world, [u], rerank_log(tmp_path / f"r{u}.jsonl"), k=4)[0]
        fused = [c.item_id for c in product.engine.candidates(product.history(user), k=4)]
        assert record.fused == fused and len(fused) == 6
        assert len(product_model.requests) == 2  # the profile, then the rerank
        assert [r.model_dump() for r in eval_model.requests] == [r.model_dump() for r in product_model.requests]
    assert not pd.isna(frame["rating"]).all()  # ratings reach both prompts, so they are compared too
