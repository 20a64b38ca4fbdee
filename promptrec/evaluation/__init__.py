"""Evaluation under the project protocol (docs/evaluation.md): splits, metrics, runners.

:mod:`.splits` builds Protocol A (k-core, leave-last-out) and Protocol B (sampled candidates);
:mod:`.metrics` scores target ranks; :mod:`.classic` runs item scorers under Protocol A;
:mod:`.tuning` selects hyperparameters and blend weights on validation folds only;
:mod:`.product`, :mod:`.rerank_eval` and :mod:`.explain_eval` measure the product's own engine
(:mod:`promptrec.engine`);
:mod:`.source` loads the dataset as the product does and names it by a content hash.
"""

from __future__ import annotations

from .classic import classic_table, evaluate_scorer, evaluate_scores, fit_and_score, format_table
from .metrics import (
    DEFAULT_KS,
    catalog_coverage,
    evaluate_rankings,
    f1_at_k,
    mean_popularity_rank,
    mrr_at_k,
    ndcg_at_k,
    popularity_ranks,
    precision_at_k,
    rank_of_target,
    recall_at_k,
    top_k,
)
from .splits import (
    LeaveLastOutSplit,
    k_core,
    leave_last_out,
    protocol_a_split,
    sampled_candidates,
    truncate_last,
)

__all__ = [
    "DEFAULT_KS",
    "LeaveLastOutSplit",
    "catalog_coverage",
    "classic_table",
    "evaluate_rankings",
    "evaluate_scorer",
    "evaluate_scores",
    "f1_at_k",
    "fit_and_score",
    "format_table",
    "k_core",
    "leave_last_out",
    "mean_popularity_rank",
    "mrr_at_k",
    "ndcg_at_k",
    "popularity_ranks",
    "precision_at_k",
    "protocol_a_split",
    "rank_of_target",
    "recall_at_k",
    "sampled_candidates",
    "top_k",
    "truncate_last",
]
