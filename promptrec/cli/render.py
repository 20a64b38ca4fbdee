"""Printing results for people: rich tables and panels.

Titles, reasons, profiles, requests and ids are untrusted: they reach the console only as
:class:`rich.text.Text` built by :mod:`.safe_text`, never as markup.
"""

from __future__ import annotations

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..data import Catalog
from ..explain import PENDING
from ..types import Recommendation, RecommendationList, StreamEvent
from .safe_text import clean, plain


def ordering(result: RecommendationList) -> str:
    """How the list was ordered, truthfully (the caption)."""
    if result.ordered_by == "llm_rerank":
        how = "ordered by the model's rerank, blended with fused retrieval"
    elif result.model_id:
        how = "ordered by fused retrieval (the model explains each pick; it does not reorder)"
    else:
        how = "ordered by fused retrieval"
    if result.fallback:
        how += f" (the model's rerank failed: {result.fallback_reason})"
    return how


def explanation_summary(result: RecommendationList) -> str:
    """How the reasons were made, in one line: by the model, from the evidence, and why not."""
    totals = result.explanations
    why = [f"{n} {what}" for n, what in ((totals.rejected, "refused by the quality gate"), (totals.late, "late"),
                                          (totals.failed, "failed"), (totals.pending, "still being written")) if n]
    text = f"reasons: {totals.llm} by the model, {totals.evidence} from the evidence"
    text += f" ({', '.join(why)})" if why else ""
    return text + f"; {totals.distinct_cited} distinct history items cited"


def why_cell(rec: Recommendation, catalog: Catalog) -> Text:
    cited = ", ".join(catalog[i].title for i in rec.cited_history if i in catalog)
    why = plain(rec.explanation, style="dim" if rec.explanation_note == PENDING else "")
    if cited:
        why.append(f"\ncites: {clean(cited)}", style="dim")
    if rec.explanation_note == PENDING:
        why.append("\n(from the evidence; the model's reason is being written)", style="dim")
    elif rec.explained_by == "evidence":
        note = f": {clean(rec.explanation_note)}" if rec.explanation_note else ""
        why.append(f"\n(explained from the evidence{note})", style="dim")
    return why


def recommendations_table(result: RecommendationList, catalog: Catalog) -> Table:
    who = f"user {result.user_id}" if result.user_id else "your history"
    table = Table(title=plain(f"Recommendations for {who}"), caption=plain(ordering(result)),
                  show_lines=True, expand=True)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("Title", ratio=2)
    table.add_column("Score", justify="right", no_wrap=True)
    table.add_column("Why", ratio=4)
    for rec in result.items:
        table.add_row(Text(str(rec.rank)), plain(rec.title), Text(f"{rec.score:.2f}"), why_cell(rec, catalog))
    return table


def print_profile(console: Console, result: RecommendationList) -> None:
    if result.profile is None:
        return
    profile = result.profile
    if profile.source == "llm":
        source = "model"
    elif profile.rejected:
        source = f"from the evidence; the model's was refused by the quality gate: {clean(profile.rejected)}"
    else:
        source = "from the evidence"
    console.print(Text.assemble(("Profile", "bold"), f" ({source}; {profile.history_used} recent items): ",
                                clean(profile.profile.text())))


def print_footer(console: Console, result: RecommendationList) -> None:
    if result.model_id:
        console.print(plain(explanation_summary(result), style="dim"))
    timing = ", ".join(f"{k.removesuffix('_s')} {v:.2f}s" for k, v in result.timings.items())
    model = result.model_id or "no language model"
    console.print(plain(f"{model} · {timing}", style="dim"))


def print_result(console: Console, result: RecommendationList, catalog: Catalog) -> None:
    print_profile(console, result)
    if result.request:
        console.print(Text.assemble(("Request:", "bold"), " ", clean(result.request)))
    console.print(recommendations_table(result, catalog))
    print_footer(console, result)


def reason_line(rec: Recommendation, catalog: Catalog) -> Text:
    """One reason as it arrives (line-by-line output)."""
    line = Text.assemble((f"#{rec.rank} ", "bold"), clean(rec.title), ": ", clean(rec.explanation))
    cited = ", ".join(catalog[i].title for i in rec.cited_history if i in catalog)
    if cited:
        line.append(f"  (cites: {clean(cited)})", style="dim")
    if rec.explained_by == "evidence" and rec.explanation_note:
        line.append(f"  (from the evidence: {clean(rec.explanation_note)})", style="dim")
    return line


def _isatty(console: Console) -> bool:
    try:
        return console.file.isatty()
    except (AttributeError, ValueError):
        return False


class StreamPrinter:
    """Prints a stream of :class:`~promptrec.types.StreamEvent`: the list at once, then each reason
    as it arrives. On a terminal the table is redrawn in place (rich Live); elsewhere (a pipe, a
    file) the list is printed once and each reason follows as a line."""

    def __init__(self, console: Console, catalog: Catalog, live: bool | None = None) -> None:
        self.console = console
        self.catalog = catalog
        # redrawn in place only on a real terminal: a pipe that asks for terminal styling (FORCE_COLOR,
        # TTY_COMPATIBLE) gets colour but no cursor movement
        self.live_mode = (console.is_terminal and _isatty(console)) if live is None else live
        self.result: RecommendationList | None = None
        self._live: Live | None = None

    def __call__(self, event: StreamEvent) -> None:
        if event.kind == "list":
            revised = self.result is not None
            self.result = event.result
            if self.result.request and not revised:
                self.console.print(Text.assemble(("Request:", "bold"), " ", clean(self.result.request)))
            if self.result.revised:
                self.console.print(Text.assemble(("Revised after the model read your request", "bold"),
                                                 f": {clean(self.result.understood)}" if self.result.understood else ""))
            table = recommendations_table(self.result, self.catalog)
            if self._live is not None:  # a revised list replaces the one on screen
                self._live.update(table, refresh=True)
            elif self.live_mode:
                self._live = Live(table, console=self.console, auto_refresh=False)
                self._live.start(refresh=True)
            else:
                self.console.print(table)
        elif event.kind == "reason" and self.result is not None:
            self.result.items[event.item.rank - 1] = event.item
            if self._live is not None:
                self._live.update(recommendations_table(self.result, self.catalog), refresh=True)
            else:
                self.console.print(reason_line(event.item, self.catalog))
        elif event.kind == "final":
            self.result = event.result
            self.close()
            print_profile(self.console, event.result)
            print_footer(self.console, event.result)

    def close(self) -> None:
        if self._live is not None:
            self._live.update(recommendations_table(self.result, self.catalog), refresh=True)
            self._live.stop()
            self._live = None
