"""Errors raised for bad or missing input data."""

from __future__ import annotations

from pathlib import Path

from .. import errors


class DataError(errors.DataError):
    """Input data that cannot be used, with where and why.

    Args:
        path: The file at fault.
        problem: What is wrong, in words a user can act on.
        line: The 1-based line (or row) number in the file, when one applies.
        unit: "line" for text files, "row" for Parquet.
    """

    def __init__(self, path: Path | str, problem: str, line: int | None = None, unit: str = "line") -> None:
        self.path = Path(path)
        self.problem = problem
        self.line = line
        where = f"{self.path}" + (f", {unit} {line}" if line is not None else "")
        super().__init__(f"{where}: {problem}")


class DatasetUnavailable(errors.DataError):
    """A dataset is missing locally and could not be downloaded."""
