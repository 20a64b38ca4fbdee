"""Read CSV, JSONL or Parquet into a frame of strings, remembering each row's line number."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path

import pandas as pd

from .errors import DataError

LINE = "_line"
SUFFIXES = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}


def file_format(path: Path) -> str:
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise DataError(path, f"unknown file type {path.suffix!r}; use one of {', '.join(sorted(SUFFIXES))}")
    return fmt


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise DataError(path, f"cannot read the file ({err.strerror or err})") from None


def _decode(path: Path, encoding: str) -> str:
    raw = _read_bytes(path)
    if not raw.strip():
        raise DataError(path, "the file is empty")
    try:
        return raw.decode("utf-8-sig" if encoding.lower().replace("_", "-") in {"utf-8", "utf8"} else encoding)
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(
            path, f"byte {raw[err.start]:#04x} is not valid {encoding}; save the file as UTF-8 or pass encoding=", line
        ) from None


def _read_csv(path: Path, encoding: str) -> pd.DataFrame:
    text = _decode(path, encoding)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    # The whole file is in memory already, so no field can be longer than it: a long description
    # is data, not an error (the csv module's default limit is 128 KiB).
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, len(text) + 1))
    try:
        header = next(reader)
        header = [h.strip() for h in header]
        _check_header(path, header)
        rows, lines = [], []
        start = reader.line_num + 1
        for row in reader:
            if not row or all(not cell.strip() for cell in row):
                start = reader.line_num + 1
                continue
            if len(row) != len(header):
                raise DataError(path, f"expected {len(header)} fields ({', '.join(header)}), found {len(row)}", start)
            rows.append(row)
            lines.append(start)
            start = reader.line_num + 1
    except StopIteration:
        raise DataError(path, "the file is empty") from None
    except csv.Error as err:
        raise DataError(path, f"not readable as CSV ({err})", reader.line_num or 1) from None
    finally:
        csv.field_size_limit(limit)
    frame = pd.DataFrame(rows, columns=header, dtype=object)
    frame[LINE] = lines
    return frame


def _check_header(path: Path, columns: list, unit: str = "line") -> None:
    """Column names must be unique (after trimming) and must not clash with the line column."""
    repeated = [name for name, n in Counter(str(c) for c in columns).items() if n > 1]
    if repeated:
        raise DataError(path, f"column {repeated[0]!r} appears more than once in the header; "
                              "give every column its own name", 1 if unit == "line" else None, unit)
    if LINE in columns:
        raise DataError(path, f"the column name {LINE!r} is reserved; rename that column", 1 if unit == "line" else None, unit)


def _read_jsonl(path: Path, encoding: str) -> pd.DataFrame:
    text = _decode(path, encoding)
    records, lines = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(path, f"not valid JSON ({err.msg} at column {err.colno})", number) from None
        if not isinstance(record, dict):
            raise DataError(path, f"expected a JSON object, found {type(record).__name__}", number)
        if LINE in record:
            raise DataError(path, f"the key {LINE!r} is reserved; rename it", number)
        records.append({k: (None if v is None else str(v) if not isinstance(v, (list, dict)) else v) for k, v in record.items()})
        lines.append(number)
    frame = pd.DataFrame.from_records(records)
    frame[LINE] = lines
    return frame


def _read_parquet(path: Path) -> pd.DataFrame:
    if path.stat().st_size == 0:
        raise DataError(path, "the file is empty")
    try:
        frame = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several types for a broken file
        raise DataError(path, f"not a readable Parquet file ({err})") from None
    _check_header(path, list(frame.columns), unit="row")
    frame = frame.astype(object).where(frame.notna(), None)
    for column in frame.columns:
        frame[column] = frame[column].map(lambda v: v if v is None or isinstance(v, (list, dict)) else str(v))
    frame[LINE] = range(1, len(frame) + 1)
    return frame


def read_table(path: Path | str, encoding: str = "utf-8") -> tuple[pd.DataFrame, str]:
    """Read a data file into a frame of strings plus a ``_line`` column.

    Returns:
        The frame, and the word for its position unit ("line" or "row").
    """
    path = Path(path)
    if not path.exists():
        raise DataError(path, "no such file")
    if not path.is_file():
        raise DataError(path, "is a folder (or another non-file); expected a data file")
    fmt = file_format(path)
    if fmt == "csv":
        frame, unit = _read_csv(path, encoding), "line"
    elif fmt == "jsonl":
        frame, unit = _read_jsonl(path, encoding), "line"
    else:
        frame, unit = _read_parquet(path), "row"
    if frame.empty:
        raise DataError(path, "the file has a header but no rows")
    return frame, unit
