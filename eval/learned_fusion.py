"""Protocol A for the learned fusion g(U, C): hand-weighted fusion vs LightGBM lambdarank vs a linear
listwise model over per-candidate signals, an ablation of the LLM-knowledge signals by target
popularity tier, and a multi-task variant (next-item + liked/disliked labels, validation only).

    python eval/learned_fusion.py                        # ml-latest-small, SmolLM2's features and profiles
    python eval/learned_fusion.py --knowledge medium     # another model's offline knowledge
    python eval/learned_fusion.py --knowledge none       # no LLM knowledge (those signals all missing)
    python eval/learned_fusion.py --knowledge medium --profiles quality --model-vectors quality

Learners are trained on the candidate pools of the validation folds only; their hyperparameters
and the learner are chosen by user-grouped cross-validation inside validation; test is scored
once. Writes eval/results/NAME.{json,md,png}. Item features and profiles are read where the batch
jobs put them (evaluation/knowledge.py); items or users without a record get missing values.
See docs/evaluation.md, "Learned fusion".
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from promptrec.errors import PromptrecError
from promptrec.evaluation.beyond import ACTIVITY
from promptrec.evaluation.learned import TIERS, LearnedConfig, run_learned_fusion
from promptrec.evaluation.report import BEYOND_COLUMNS, chart, group_table, markdown_table
from promptrec.evaluation.progress import progress_bars
from promptrec.settings import Settings

RESULTS = Path(__file__).resolve().parent / "results"


def _f(value) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


def _ci(pair) -> str:
    return f"[{_f(pair[0])}, {_f(pair[1])}]" if pair else ""


def markdown(payload: dict) -> str:
    meta, sel = payload["meta"], payload["selection"]
    lines = [f"# Learned fusion (Protocol A), {meta['dataset']['name']} sha256 {meta['dataset']['sha256'][:12]}", "",
             f"Knowledge model: `{meta['knowledge_model']}`: features for {meta['items_with_features']} of "
             f"{meta['split_items']} split items, profiles for {meta['users_with_profiles']} of {meta['users']} users"
             + (f" (by `{meta['profile_model']}`)" if meta.get("profile_model") not in (None, meta["knowledge_model"])
                else "") + (f"; model vectors by `{meta['model_vectors']}`" if meta.get("model_vectors") else "") + ". "
             f"Hand weights {sel['hand_weights']}, top {sel['pool_depth']} per source (chosen on validation). "
             f"Chosen learner: **{sel['winner']}** {sel['winner_params']} on pools of the top "
             f"{sel.get('learners_pool_depth', sel['pool_depth'])} per source (out-of-fold validation N@10 "
             f"{sel['winner_oof_N@10']:.4f} vs hand-weighted {sel['hand_oof_N@10']:.4f} over "
             f"{meta['validation_queries']} validation queries; won: {sel['won_on_validation']}).", "",
             "Validation rows of learners are out-of-fold (user-grouped CV inside validation); test rows come from "
             "models trained on every validation pool. Intervals: 95% bootstrap over users; Δ is the paired "
             "N@10 difference to the hand-weighted fusion.", "",
             "| model | split | N@10 | R@10 | N@20 | R@20 | N@10 95% CI | Δ N@10 vs hand [95% CI] |",
             "|---|---|---|---|---|---|---|---|"]
    for r in payload["rows"]:
        m = r["metrics"]
        delta = f"{r['diff_vs_hand_N@10']:+.4f} {_ci(r['diff_vs_hand_ci95'])}" if "diff_vs_hand_N@10" in r else ""
        lines.append(f"| {r['name']} | {r['split']} | {_f(m['N@10'])} | {_f(m['R@10'])} | {_f(m['N@20'])} | "
                     f"{_f(m['R@20'])} | {_ci(r['N@10_ci95'])} | {delta} |")
    if payload["ablation"]:
        tiers = payload["ablation"][0]["users_by_tier"]
        lines += ["", "## Ablation: without each LLM-knowledge signal group", "",
                  "N@10 by target popularity tier (Protocol A's tiers, by share of interactions in the stage's fit "
                  "data: head, the most popular items holding the first 20%; tail, the least popular holding at most "
                  f"20%; torso, the rest; validation users per tier {tiers}).", "",
                  "| model | split | N@10 | Δ vs hand [95% CI] | loss vs all signals [95% CI] | " +
                  " | ".join(f"N@10 {t}" for t in TIERS) + " |", "|---|---|---|---|---|" + "---|" * len(TIERS)]
        for r in payload["ablation"]:
            delta = f"{r['diff_vs_hand_N@10']:+.4f} {_ci(r['diff_vs_hand_ci95'])}"
            loss = _ci(r.get("diff_vs_full_ci95"))
            lines.append(f"| {r['name']} | {r['split']} | {_f(r['metrics']['N@10'])} | {delta} | {loss} | " +
                         " | ".join(_f(r["N@10_by_tier"][t]) for t in TIERS) + " |")
    if payload.get("beyond"):
        beyond = payload["beyond"]
        lines += ["", "## Beyond accuracy", "",
                  "The top-10 lists of each fusion (validation: the split's own validation stage, out-of-fold for "
                  "learners; test: every user). Tiers as in the ablation (Protocol A's; docs/evaluation.md, \"Beyond "
                  "accuracy\"). Every figure: mean [95% bootstrap interval over users]; Gini and coverage: ± 1.96 "
                  "jackknife standard errors. Chart: the .png beside this file.", "",
                  markdown_table(beyond, ("N@10", "R@10", *BEYOND_COLUMNS)), "",
                  "N@10 by the target's popularity tier (users per group in brackets):", "",
                  group_table(beyond, "target_tier", TIERS), "",
                  "N@10 by user activity (history length terciles at the stage: " +
                  ", ".join(f"{k} {v}" for k, v in payload["meta"]["groups"]["test"]["activity"].items()) + " on test):",
                  "", group_table(beyond, "activity", ACTIVITY)]
        attributes = sorted({k for r in beyond for k in (r.get("groups") or {}) if k.startswith("attribute:")})
        for kind in attributes:
            lines += ["", f"N@10 by user {kind.split(':', 1)[1]} (users file):", "", group_table(beyond, kind)]
        if not attributes:
            lines += ["", "No users file in this dataset: no demographic groups."]
    lines += ["", "## Multi-task (validation, out-of-fold, all folds)", "",
              "| model | N@10 | 95% CI | N@10 liked targets (≥4) | N@10 disliked targets (≤2) |", "|---|---|---|---|---|"]
    for r in payload["multitask"]:
        lines.append(f"| {r['name']} | {_f(r['N@10'])} | {_ci(r['N@10_ci95'])} | {_f(r['N@10_liked_targets'])} "
                     f"(n={r['liked']}) | {_f(r['N@10_disliked_targets'])} (n={r['disliked']}) |")
    lines += ["", "## Hyperparameters tried (out-of-fold validation N@10)", ""]
    lines += [f"- {t['kind']} {t['params']}" + (f", top {t['pool_depth']}" if "pool_depth" in t else "") +
              f": {t['oof_N@10']:.4f}" for t in sel["tried"]]
    lines += ["", f"Signal importance ({sel['winner']}): " + ", ".join(f"{n} {v}" for n, v in list(sel["importance"].items())[:12]),
              "", f"Machine: {meta['machine']}; wall {meta['wall_s']} s; timings {meta['timings_s']}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default=None, help="dataset name or folder (default: PROMPTREC_DATASET or ml-latest-small)")
    parser.add_argument("--knowledge", default="small",
                        help="model whose item features and profiles feed the LLM signals: small | medium | quality | "
                        "path | none (default: small)")
    parser.add_argument("--profiles", default=None,
                        help="model whose profiles feed the profile signals (default: the --knowledge model)")
    parser.add_argument("--model-vectors", default=None, metavar="MODEL",
                        help="model whose own vectors of each item's title + genres (mean of its last hidden states, "
                        "centred) feed the model_vectors signals: small | medium | quality | path (default: none)")
    parser.add_argument("--name", default="learned-fusion", help="result file name (default: learned-fusion)")
    parser.add_argument("--folds", type=int, default=3, help="validation folds that train the learners")
    parser.add_argument("--no-ablation", action="store_true", help="skip the ablation table")
    parser.add_argument("--no-ablation-cv", action="store_true",
                        help="score the ablations on test only (default: also out-of-fold on validation)")
    parser.add_argument("--pool-depths", default="hand,100,200",
                        help="the learners' pool depths per source to choose from on validation, comma-separated; "
                        "'hand' is the hand-weighted fusion's own depth (default: hand,100,200)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    parser.add_argument("--runs", type=Path, default=None, help="state folder (default: STATE_DIR/eval/DATASET-HASH)")
    args = parser.parse_args(argv)
    settings = Settings()
    if args.dataset:
        settings = settings.model_copy(update={"dataset": args.dataset})
    knowledge = None if args.knowledge.lower() == "none" else args.knowledge
    try:
        depths = [None if d.strip() == "hand" else int(d) for d in args.pool_depths.split(",") if d.strip()]
        if any(d is not None and d < 1 for d in depths):
            raise ValueError
    except ValueError:
        parser.error(f"--pool-depths {args.pool_depths!r}: give numbers >= 1 or 'hand', comma-separated "
                     "(e.g. hand,100,200)")
    config = LearnedConfig(name=args.name, folds=args.folds, knowledge_model=knowledge, profile_model=args.profiles,
                           model_vectors=args.model_vectors,
                           ablations=not args.no_ablation, ablation_cv=not args.no_ablation_cv,
                           pool_depths=depths or [None])
    try:
        with progress_bars() as (bar, say):
            payload = run_learned_fusion(config, settings, args.runs, bar, say)
    except PromptrecError as err:  # an unknown model, a missing dataset, ...: one line, no traceback
        print(f"learned_fusion.py: {err}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(payload, indent=1, default=str))
    if payload.get("beyond"):
        chart(payload["beyond"], args.out / f"{args.name}.png")
    text = markdown(payload)
    (args.out / f"{args.name}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
