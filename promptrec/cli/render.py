"""Printing results for people: rich tables and panels."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ..data import Catalog
from ..types import RecommendationList


def recommendations_table(result: RecommendationList, catalog: Catalog) -> Table:
    who = f"user {result.user_id}" if result.user_id else "your history"
    how = result.ordered_by.replace("_", " ")
    if result.fallback:
        how += f" (fallback: {result.fallback_reason})"
    table = Table(title=f"Recommendations for {who}", caption=f"ordered by {how}", show_lines=True, expand=True)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("Title", ratio=2)
    table.add_column("Score", justify="right", no_wrap=True)
    table.add_column("Why", ratio=4)
    for rec in result.items:
        cited = ", ".join(catalog[i].title for i in rec.cited_history if i in catalog)
        why = rec.explanation + (f"\n[dim]cites: {cited}[/dim]" if cited else "")
        if rec.explained_by == "evidence":
            why += "\n[dim](explained from the evidence)[/dim]"
        table.add_row(str(rec.rank), rec.title, f"{rec.score:.2f}", why)
    return table


def print_result(console: Console, result: RecommendationList, catalog: Catalog) -> None:
    if result.profile is not None:
        source = "model" if result.profile.source == "llm" else "fallback"
        console.print(f"[bold]Profile[/bold] ({source}, {result.profile.history_used} recent items): "
                      f"{result.profile.profile.text()}")
    if result.request:
        console.print(f"[bold]Request:[/bold] {result.request}")
    console.print(recommendations_table(result, catalog))
    timing = ", ".join(f"{k.removesuffix('_s')} {v:.2f}s" for k, v in result.timings.items())
    model = result.model_id or "no language model"
    console.print(f"[dim]{model} · {timing}[/dim]")
