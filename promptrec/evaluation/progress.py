"""Progress bars for the eval scripts: one ``bar(label, total) -> advance(n)`` factory on stderr."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

Bar = Callable[[str, int], Callable[[int], None]]


@contextmanager
def progress_bars() -> Iterator[tuple[Bar, Callable[[str], None]]]:
    """``(bar, say)``: ``bar(label, total)`` starts a bar and returns its ``advance(n)``; ``say``
    prints a line above the bars."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True)) as progress:
        def bar(label: str, total: int) -> Callable[[int], None]:
            task = progress.add_task(label, total=total)
            return lambda n: progress.advance(task, n)

        yield bar, progress.console.print
