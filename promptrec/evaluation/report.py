"""Results of an evaluation run: one JSON with every figure, a markdown table, a PNG chart."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path

ANCHORS = {"LlamaRec N@10": 0.0759, "LRURec N@10": 0.0705}
COLUMNS = ("R@1", "N@5", "R@5", "N@10", "R@10", "MRR@10", "N@20", "R@20", "P@10", "F1@10", "coverage", "pop_rank")
LLM_COLUMNS = ("grounding_rate", "llm_explained_rate", "fallback_rate", "rerank_invalid_rate", "profile_invalid_rate",
               "rejected_picks_per_user", "llm_calls", "prompt_tokens", "completion_tokens", "latency_p50_s",
               "latency_p95_s")


BEYOND_COLUMNS = ("gini", "tail_share", "long_tail_share", "avg_pop", "coverage")
EXPLANATION_COLUMNS = ("reasons", "faithfulness", "shown_faithfulness", "genre_faithfulness", "claim_rate", "claims_confirmed_rate", "leak_rate",
                       "distinct_cited_per_list", "distinct_cited_llm_per_list", "lists_citing_3_rate")
# the product's explained answer (promptrec/evaluation/explain_eval.py): the gate and the drafts before it
GATE_COLUMNS = ("drafts_per_list", "draft_refused_rate", "draft_claim_rate", "draft_faithfulness", "faithfulness",
                "llm_explained_rate", "explain_latency_mean_s", "explain_latency_p50_s", "explain_latency_p95_s")
TIER_COLORS = {"head": "#e78ac3", "torso": "#a6d854", "tail": "#ffd92f"}


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.0f}"
    return str(value)


def _fmt_bound(value: float, like: float) -> str:
    return f"{value:.3f}" if abs(like) < 10 else f"{value:.0f}"


def cell(value, interval=None) -> str:
    """``0.0930 [0.081, 0.105]``: a figure and its 95% interval (the figure alone when it has none)."""
    text = _fmt(value)
    if interval and isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value)):
        text += f" [{_fmt_bound(interval[0], value)}, {_fmt_bound(interval[1], value)}]"
    return text


def _users(row: dict) -> int:
    return int(row["metrics"].get("n_users", 0))


def markdown_table(rows: Sequence[dict], columns: Sequence[str] = COLUMNS) -> str:
    """One line per row; every figure with its interval where the row has one (``row["intervals"]``)."""
    head = ["stage", "split", "users", *columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        intervals = row.get("intervals") or {}
        cells = [row["name"], row["split"], str(_users(row))]
        cells += [cell(row["metrics"].get(c), intervals.get(c)) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def group_table(rows: Sequence[dict], kind: str, labels: Sequence[str] | None = None, metric: str = "N@10") -> str:
    """``metric`` per group of ``kind`` (``target_tier``, ``activity``, ``attribute:NAME``) for each row,
    as ``value [lo, hi] (n users)``."""
    with_groups = [r for r in rows if kind in (r.get("groups") or {})]
    if labels is None:
        labels = sorted({label for r in with_groups for label in r["groups"][kind]})
    lines = ["| stage | split | users | " + " | ".join(f"{metric} {_md(label)}" for label in labels) + " |",
             "|" + "---|" * (3 + len(labels))]
    for row in with_groups:
        cells = [row["name"], row["split"], str(_users(row))]
        for label in labels:
            g = row["groups"][kind].get(label)
            cells.append("–" if g is None else f"{cell(g.get(metric), g['intervals'].get(metric))} ({g['users']})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plain(text: str) -> str:
    """Untrusted text (a model's reason, a title) made inert inside a fenced block: one line, no
    control characters, no backticks."""
    return re.sub(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]", " ", str(text)).replace("`", "'")


def _md(text: str) -> str:
    """Untrusted text (a users file's attribute or value) as inert table text: no control characters,
    no markup or table syntax."""
    return re.sub(r"[|<>\[\]`*_\\]", " ", plain(text)).strip() or "?"


def reason_lines(sample: Sequence[dict]) -> list[str]:
    """A fenced plain-text block of sampled reasons with their verdicts."""
    lines = ["```text"]
    for s in sample:
        claims = ", ".join(f"{c['term']}{'' if c['confirmed'] else ' (NOT confirmed)'}" for c in s.get("claims", []))
        verdict = {True: "faithful", False: "UNFAITHFUL", None: "no claim"}[s.get("faithful")]
        lines.append(f"{plain(s['title'])} <- {plain('; '.join(s.get('cited', [])) or 'no citation')}")
        lines.append(f"  \"{plain(s['reason'])}\"")
        lines.append(f"  {verdict}; claims: {plain(claims) or '-'}" + (f"; LEAK: {plain(s['leak'])}" if s.get("leak") else ""))
    lines.append("```")
    return lines


def refused_lines(sample: Sequence[dict]) -> list[str]:
    """A fenced plain-text block of sampled drafts the quality gate refused, with the problem it found."""
    lines = ["```text"]
    for s in sample:
        lines.append(f"{plain(s['title'])} <- {plain('; '.join(s.get('cited', [])) or 'no citation')}")
        lines.append(f"  \"{plain(s['reason'])}\"")
        lines.append(f"  refused: {plain(s.get('problem') or '-')}")
    lines.append("```")
    return lines


def _sampled(rows: Sequence[dict]) -> tuple[list[dict], list[dict]]:
    """Rows over the whole population, and rows on a smaller seeded sample of users."""
    population = max((_users(r) for r in rows), default=0)
    return [r for r in rows if _users(r) == population], [r for r in rows if _users(r) < population]


def _errors(rows: Sequence[dict], metric: str) -> tuple[list[float], list[list[float]]]:
    values, err = [], [[], []]
    for r in rows:
        v = r["metrics"].get(metric, float("nan"))
        ci = (r.get("intervals") or {}).get(metric)
        values.append(v)
        err[0].append(max(v - ci[0], 0) if ci else 0)
        err[1].append(max(ci[1] - v, 0) if ci else 0)
    return values, err


def _color(row: dict) -> str:
    name = row["name"]
    return ("#fc8d62" if ("rerank" in name or "LLM order" in name or "model reasons" in name) else
            "#66c2a5" if name.startswith(("Fused", "Embedding")) else "#8da0cb")


def chart(rows: Sequence[dict], path: Path, split: str = "test") -> None:
    """N@10 and R@10 per stage on ``split`` with 95% intervals as error bars and the published anchors
    as reference lines; N@10 by the target's popularity tier; the long-tail share of the lists.
    Rows on a sample of users are drawn in their own column, the sample size on its axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = [r for r in rows if r["split"] == split]
    full, sample = _sampled(chosen)
    panels = [(full, f"all {_users(full[0]) if full else 0} users")]
    if sample:
        sizes = sorted({_users(r) for r in sample})
        panels.append((sample, f"seeded sample of {', '.join(map(str, sizes))} users\n"
                               "(compare only with each other, not with the left)"))
    metrics = ("N@10", "R@10", "tiers", "long_tail_share")
    widths = [max(len(p[0]), 2 if n == 0 else 5) for n, p in enumerate(panels)]
    fig, axes = plt.subplots(len(metrics), len(panels), figsize=(max(9, 1.0 * sum(widths) + 4), 4.2 * len(metrics)),
                             squeeze=False, sharey="row", gridspec_kw={"width_ratios": widths})
    for col, (group, label) in enumerate(panels):
        x = range(len(group))
        names = [r["name"] for r in group]
        for row_n, metric in enumerate(metrics):
            ax = axes[row_n][col]
            if metric == "tiers":
                width = 0.27
                for t, tier in enumerate(("head", "torso", "tail")):
                    vals, err = [], [[], []]
                    for r in group:
                        g = (r.get("groups") or {}).get("target_tier", {}).get(tier)
                        v = g["N@10"] if g else float("nan")
                        ci = g["intervals"].get("N@10") if g else None
                        vals.append(v)
                        err[0].append(max(v - ci[0], 0) if ci else 0)
                        err[1].append(max(ci[1] - v, 0) if ci else 0)
                    ax.bar([i + (t - 1) * width for i in x], vals, width, yerr=err, capsize=2,
                           color=TIER_COLORS[tier], label=f"target in {tier}", error_kw={"elinewidth": 0.8})
                ax.set_title(f"N@10 by the target's popularity tier, {split} split" if col == 0 else
                             "N@10 by target tier (sample)", fontsize=9)
                ax.legend(fontsize=7, loc="upper left")
            else:
                values, err = _errors(group, metric)
                bars = ax.bar(x, values, yerr=err, capsize=3, color=[_color(r) for r in group],
                              error_kw={"elinewidth": 0.8})
                ax.bar_label(bars, fmt="%.3f", fontsize=6, padding=2)
                title = {"long_tail_share": "share of shown items outside the head (long tail)"}.get(metric, metric)
                ax.set_title(f"{title}, {split} split (Protocol A), 95% bootstrap intervals" if col == 0 else
                             f"{metric} (sample)", fontsize=9)
                if metric in ("N@10", "R@10"):
                    anchors = ANCHORS.items() if metric == "N@10" else {"LlamaRec R@10": 0.1524, "LRURec R@10": 0.1426}.items()
                    for (name, value), style in zip(anchors, ("--", ":")):
                        ax.axhline(value, color="black", linestyle=style, linewidth=1, label=f"{name} {value}")
                    ax.legend(fontsize=7, loc="upper left")
            ax.set_xticks(list(x), names, rotation=60, ha="right", fontsize=7)
            ax.set_xlabel(label, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _gate_lines(rows: Sequence[dict]) -> list[str]:
    """The product's explained answer: its quality gate, the drafts before it, the shown and refused samples."""
    if not rows:
        return []
    lines = ["## The product's explained answer: reasons and the quality gate", "",
             "The fused list `recommend()` shows, with one model reason per shown item, as the product streams it "
             "(`promptrec/evaluation/explain_eval.py`). The gate refuses a draft whose claims the same claim reader "
             "does not confirm, so the shown reasons' faithfulness is high by construction: the model's own figures "
             "are draft_faithfulness (every draft, before the gate) and draft_refused_rate. drafts_per_list: model "
             "reasons written per list; explain seconds per user: retrieval + every reason (no profile).", "",
             markdown_table(rows, GATE_COLUMNS), ""]
    test = [r for r in rows if r["split"] == "test"] or list(rows)
    shown = next((r for r in test if r.get("reason_sample")), None)
    if shown:
        lines += [f"A seeded sample of the shown model reasons ({shown['name']}, {shown['split']}; plain text):", "",
                  *reason_lines(shown["reason_sample"]), ""]
    refused = next((r for r in test if r.get("refused_sample")), None)
    if refused:
        lines += [f"A seeded sample of drafts the gate refused ({refused['name']}, {refused['split']}; "
                  "plain text):", "",
                  *refused_lines(refused["refused_sample"]), ""]
    elif test:
        lines += ["The gate refused no draft on this split.", ""]
    return lines


def write_report(folder: Path, name: str, payload: dict) -> dict[str, Path]:
    """Write ``name``.json, .md and .png into ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {ext: folder / f"{name}.{ext}" for ext in ("json", "md", "png")}
    paths["json"].write_text(json.dumps(payload, indent=2, default=str) + "\n")
    meta = payload["meta"]
    dataset = meta.get("dataset")
    source = f"Dataset {dataset['name']} (sha256 {dataset['sha256'][:12]}). " if dataset else ""
    lines = [f"# {name}", "", f"{source}Protocol A (iterative 5-core, leave-last-out, history excluded, full ranking "
             f"over {meta['split']['items']:,} items); seed {meta['seed']}. See docs/evaluation.md.", "",
             markdown_table(payload["rows"]), "",
             "Every figure: the mean over users [95% percentile bootstrap interval over users, 1,000 resamples "
             "seeded by the root seed]. Rows with fewer users are a seeded sample: compare them only with the "
             "row on the same users.", ""]
    rows = payload["rows"]
    if any(r.get("groups") for r in rows):
        groups = meta.get("groups", {}).get("test", {})
        tiers = groups.get("tiers", {})
        tier_text = ", ".join(f"{t} {v['items']} items ({v['interaction_share']:.0%} of interactions)"
                              for t, v in tiers.items())
        lines += ["## Beyond accuracy", "",
                  "Popularity bias of the top-10 lists: Gini of exposure over the catalog, share of shown items in "
                  "the tail tier and outside the head (long tail), mean interactions of a shown item, catalog coverage.",
                  "", markdown_table(rows, BEYOND_COLUMNS), "",
                  f"N@10 by the target's popularity tier (tiers from the stage's fit data; test: {tier_text}; "
                  "cell: value [interval] (users)):", "", group_table(rows, "target_tier", ("head", "torso", "tail")), "",
                  "N@10 by user activity (history-length terciles at the stage: "
                  + "; ".join(f"{k} {v}" for k, v in groups.get("activity", {}).items()) + "):", "",
                  group_table(rows, "activity", ("light", "medium", "heavy")), ""]
        kinds = sorted({k for r in rows for k in (r.get("groups") or {}) if k.startswith("attribute:")})
        for kind in kinds:
            lines += [f"N@10 by {_md(kind.split(':', 1)[1])} (from the users file):", "", group_table(rows, kind), ""]
        if not kinds:
            lines += ["No users file in this dataset: no demographic groups.", ""]
    llm_rows = [r for r in rows if "grounding_rate" in r["metrics"]]
    if llm_rows:
        lines += ["## LLM stage: explanations, validity, cost", "", markdown_table(llm_rows, LLM_COLUMNS), "",
                  "grounding_rate: share of shown items whose explanation cites a real history item; "
                  "llm_explained_rate: share explained by the model (the rest by evidence); latency per user "
                  "(retrieval + profile + rerank; the product's explained answer has its explain seconds below).", ""]
        if any("faithfulness" in r["metrics"] for r in llm_rows):
            lines += ["Explanation metrics (`promptrec/evaluation/faithfulness.py`, docs/evaluation.md): faithfulness = "
                      "share of the model's reasons that state a genre or theme whose every stated genre/theme the "
                      "catalog or features confirm for the item and a cited item; shown_faithfulness = the same over "
                      "every shown explanation that states one (the evidence sentences too: what the person reads); "
                      "claim_rate = share that state one; "
                      "leak_rate = share with internal ids or prompt wording; distinct cited items per 10-item list "
                      "(all shown explanations; _llm: the model's alone); lists_citing_3_rate among users with >= 3 "
                      "history items.", "", markdown_table(llm_rows, EXPLANATION_COLUMNS), ""]
            sampled = next((r for r in llm_rows if r.get("reason_sample") and r["split"] == "test"
                            and "refused_sample" not in r), None)
            if sampled:
                lines += [f"A seeded sample of the model's reasons ({sampled['name']}, test; plain text):", "",
                          *reason_lines(sampled["reason_sample"]), ""]
        lines += _gate_lines([r for r in llm_rows if "drafts_per_list" in r["metrics"]])
    if payload.get("selection"):
        lines += ["## Choices made on validation", "", "```json", json.dumps(payload["selection"], indent=2), "```", ""]
    lines += ["## Run", "", "```json", json.dumps(meta, indent=2, default=str), "```", ""]
    paths["md"].write_text("\n".join(lines))
    chart(payload["rows"], paths["png"])
    return paths
