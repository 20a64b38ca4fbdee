"""Results of an evaluation run: one JSON with every figure, a markdown table, a PNG chart."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

ANCHORS = {"LlamaRec N@10": 0.0759, "LRURec N@10": 0.0705}
COLUMNS = ("R@1", "N@5", "R@5", "N@10", "R@10", "MRR@10", "N@20", "R@20", "P@10", "F1@10", "coverage", "pop_rank")
LLM_COLUMNS = ("grounding_rate", "llm_explained_rate", "fallback_rate", "rerank_invalid_rate", "profile_invalid_rate",
               "rejected_picks_per_user", "llm_calls", "prompt_tokens", "completion_tokens", "latency_p50_s",
               "latency_p95_s")


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.0f}"
    return str(value)


def markdown_table(rows: Sequence[dict], columns: Sequence[str] = COLUMNS) -> str:
    head = ["stage", "split", "users", *columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row["name"], row["split"], str(int(row["metrics"].get("n_users", 0)))]
        cells += [_fmt(row["metrics"].get(c)) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def chart(rows: Sequence[dict], path: Path, split: str = "test") -> None:
    """Bars of N@10 and R@10 per stage on ``split``, with the published anchors as reference lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = [r for r in rows if r["split"] == split]
    names = [f"{r['name']}\n({int(r['metrics']['n_users'])} users)" for r in chosen]
    fig, axes = plt.subplots(1, 2, figsize=(max(8, 1.3 * len(chosen) + 3), 5.5), sharey=False)
    for ax, metric in zip(axes, ("N@10", "R@10")):
        values = [r["metrics"][metric] for r in chosen]
        colors = ["#fc8d62" if ("rerank" in r["name"] or "LLM order" in r["name"]) else
                  "#66c2a5" if r["name"].startswith(("Fused", "Embedding")) else "#8da0cb" for r in chosen]
        bars = ax.bar(range(len(values)), values, color=colors)
        ax.bar_label(bars, fmt="%.3f", fontsize=7)
        ax.set_xticks(range(len(values)), names, rotation=60, ha="right", fontsize=7)
        ax.set_title(f"{metric} on the {split} split (Protocol A)")
        if metric == "N@10":
            for (label, value), style in zip(ANCHORS.items(), ("--", ":")):
                ax.axhline(value, color="black", linestyle=style, linewidth=1, label=f"{label} {value}")
        else:
            ax.axhline(0.1524, color="black", linestyle="--", linewidth=1, label="LlamaRec R@10 0.1524")
            ax.axhline(0.1426, color="black", linestyle=":", linewidth=1, label="LRURec R@10 0.1426")
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


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
             markdown_table(payload["rows"]), ""]
    llm_rows = [r for r in payload["rows"] if "grounding_rate" in r["metrics"]]
    if llm_rows:
        lines += ["## LLM stage: explanations, validity, cost", "", markdown_table(llm_rows, LLM_COLUMNS), "",
                  "grounding_rate: share of shown items whose explanation cites a real history item; "
                  "llm_explained_rate: share explained by the model (the rest by evidence); latency per user "
                  "(retrieval + profile + rerank).", ""]
    if payload.get("selection"):
        lines += ["## Choices made on validation", "", "```json", json.dumps(payload["selection"], indent=2), "```", ""]
    lines += ["## Run", "", "```json", json.dumps(meta, indent=2, default=str), "```", ""]
    paths["md"].write_text("\n".join(lines))
    chart(payload["rows"], paths["png"])
    return paths
