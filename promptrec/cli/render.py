"""Printing results for people: rich tables and panels.

Titles, reasons, profiles, requests and ids are untrusted: they reach the console only as
:class:`rich.text.Text` built by :mod:`.safe_text`, never as markup.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..data import Catalog
from ..types import RecommendationList
from .safe_text import clean, plain


def recommendations_table(result: RecommendationList, catalog: Catalog) -> Table:
    who = f"user {result.user_id}" if result.user_id else "your history"
    how = result.ordered_by.replace("_", " ")
    if result.fallback:
        how += f" (fallback: {result.fallback_reason})"
    table = Table(title=plain(f"Recommendations for {who}"), caption=plain(f"ordered by {how}"),
                  show_lines=True, expand=True)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("Title", ratio=2)
    table.add_column("Score", justify="right", no_wrap=True)
    table.add_column("Why", ratio=4)
    for rec in result.items:
        cited = ", ".join(catalog[i].title for i in rec.cited_history if i in catalog)
        why = plain(rec.explanation)
        if cited:
            why.append(f"\ncites: {clean(cited)}", style="dim")
        if rec.explained_by == "evidence":
            why.append("\n(explained from the evidence)", style="dim")
        table.add_row(Text(str(rec.rank)), plain(rec.title), Text(f"{rec.score:.2f}"), why)
    return table


def print_result(console: Console, result: RecommendationList, catalog: Catalog) -> None:
    if result.profile is not None:
        source = "model" if result.profile.source == "llm" else "fallback"
        console.print(Text.assemble(("Profile", "bold"), f" ({source}, {result.profile.history_used} recent items): ",
                                    clean(result.profile.profile.text())))
    if result.request:
        console.print(Text.assemble(("Request:", "bold"), " ", clean(result.request)))
    console.print(recommendations_table(result, catalog))
    timing = ", ".join(f"{k.removesuffix('_s')} {v:.2f}s" for k, v in result.timings.items())
    model = result.model_id or "no language model"
    console.print(plain(f"{model} · {timing}", style="dim"))
