"""Typed loaders for interaction logs and item catalogs (CSV, JSONL, Parquet)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataError
from .readers import LINE, read_table
from .types import Catalog, InteractionLog, Item, LoadReport


# Largest |timestamp| in seconds: fits int64 with room for differences between two timestamps.
TIMESTAMP_LIMIT = float(2**62)

ALIASES: dict[str, tuple[str, ...]] = {
    "user_id": ("user_id", "userid", "user", "uid"),
    "item_id": ("item_id", "itemid", "item", "movieid", "movie_id", "iid", "id"),
    "timestamp": ("timestamp", "ts", "time", "datetime", "date"),
    "rating": ("rating", "score", "value"),
    "title": ("title", "name"),
}


def _find_column(frame: pd.DataFrame, role: str, explicit: str | None, path: Path, required: bool) -> str | None:
    if explicit:
        if explicit not in frame.columns:
            raise DataError(path, f"no column {explicit!r}; the file has {', '.join(c for c in frame.columns if c != LINE)}")
        return explicit
    lower = {c.lower(): c for c in frame.columns}
    for alias in ALIASES[role]:
        if alias in lower:
            return lower[alias]
    if required:
        have = ", ".join(c for c in frame.columns if c != LINE)
        raise DataError(path, f"missing column {role!r} (accepted names: {', '.join(ALIASES[role])}); the file has {have}")
    return None


def _blank(series: pd.Series) -> pd.Series:
    return series.isna() | (series.astype(str).str.strip() == "")


def _first_bad(frame: pd.DataFrame, mask: pd.Series) -> int:
    return int(frame.loc[mask, LINE].iloc[0])


def _parse_timestamps(values: pd.Series, frame: pd.DataFrame, path: Path, unit: str) -> pd.Series:
    text = values.astype(str).str.strip()
    numbers = pd.to_numeric(text, errors="coerce")
    out = numbers.copy()
    need_dates = numbers.isna()
    if need_dates.any():
        dates = pd.to_datetime(text[need_dates], errors="coerce", utc=True, format="ISO8601")
        out[need_dates] = (dates - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    bad = out.isna()
    if bad.any():
        line = _first_bad(frame, bad)
        raise DataError(
            path, f"timestamp {text[bad].iloc[0]!r} is neither unix seconds nor an ISO 8601 date/time", line, unit
        )
    # Timestamps are stored as int64 seconds: anything that does not fit would wrap around silently.
    as_float = out.astype(float)
    bad = ~np.isfinite(as_float) | (as_float.abs() >= TIMESTAMP_LIMIT)
    if bad.any():
        raise DataError(path, f"timestamp {text[bad].iloc[0]!r} is out of range: unix seconds must be finite and "
                              f"between -2^62 and 2^62", _first_bad(frame, bad), unit)
    return out.astype(np.int64)


def load_interactions(
    path: Path | str,
    *,
    catalog: Catalog | None = None,
    user_column: str | None = None,
    item_column: str | None = None,
    timestamp_column: str | None = None,
    rating_column: str | None = None,
    encoding: str = "utf-8",
) -> tuple[InteractionLog, LoadReport]:
    """Load user-item interactions.

    Column names are found by common aliases (``userId``, ``movieId``, ``ts`` ...) unless given.
    Rows naming items that are not in ``catalog`` are dropped and counted; when a user has the
    same item more than once, the latest interaction is kept and the others are counted.

    Raises:
        DataError: naming the file, line and problem, for anything that cannot be read.
    """
    path = Path(path)
    frame, unit = read_table(path, encoding)
    columns = {
        "user_id": _find_column(frame, "user_id", user_column, path, True),
        "item_id": _find_column(frame, "item_id", item_column, path, True),
        "timestamp": _find_column(frame, "timestamp", timestamp_column, path, True),
        "rating": _find_column(frame, "rating", rating_column, path, False),
    }
    report = LoadReport(source=str(path), rows_read=len(frame))
    for role in ("user_id", "item_id", "timestamp"):
        blank = _blank(frame[columns[role]])
        if blank.any():
            raise DataError(path, f"empty {role}", _first_bad(frame, blank), unit)
    out = pd.DataFrame(
        {
            "user_id": frame[columns["user_id"]].astype(str).str.strip(),
            "item_id": frame[columns["item_id"]].astype(str).str.strip(),
            "timestamp": _parse_timestamps(frame[columns["timestamp"]], frame, path, unit),
            LINE: frame[LINE],
        }
    )
    if columns["rating"]:
        raw = frame[columns["rating"]]
        ratings = pd.to_numeric(raw, errors="coerce")
        bad = ratings.isna() & ~_blank(raw)
        if bad.any():
            raise DataError(path, f"rating {raw[bad].iloc[0]!r} is not a number", _first_bad(frame, bad), unit)
        ratings = ratings.astype(float)
        bad = ratings.notna() & (~np.isfinite(ratings.fillna(0.0)) | (ratings < 0))
        if bad.any():
            raise DataError(path, f"rating {raw[bad].iloc[0]!r} is out of range: ratings must be finite numbers >= 0",
                            _first_bad(frame, bad), unit)
        out["rating"] = ratings
    else:
        out["rating"] = np.nan
    if catalog is not None:
        known = out["item_id"].isin(catalog.ids)
        report.drop("rows with item ids not in the catalog", int((~known).sum()))
        out = out[known]
    before = len(out)
    out = out.sort_values(["timestamp", LINE]).drop_duplicates(["user_id", "item_id"], keep="last")
    report.drop("repeated user-item pairs (kept the latest)", before - len(out))
    if out.empty:
        raise DataError(path, "no interactions left after dropping unknown items")
    report.rows_kept = len(out)
    return InteractionLog(out.drop(columns=LINE)), report


def _field_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple, np.ndarray)):
        return ", ".join(str(v) for v in value)
    return str(value).strip()


def load_catalog(
    path: Path | str,
    *,
    id_column: str | None = None,
    title_column: str | None = None,
    text_columns: Sequence[str] | None = None,
    encoding: str = "utf-8",
) -> tuple[Catalog, LoadReport]:
    """Load an item catalog: an id, a title and any free-text columns (all other columns by default).

    Raises:
        DataError: naming the file, line and problem (missing column, empty id or title, ...).
    """
    path = Path(path)
    frame, unit = read_table(path, encoding)
    id_col = _find_column(frame, "item_id", id_column, path, True)
    title_col = _find_column(frame, "title", title_column, path, True)
    for column, role in ((id_col, "item id"), (title_col, "title")):
        blank = _blank(frame[column])
        if blank.any():
            raise DataError(path, f"empty {role}", _first_bad(frame, blank), unit)
    if text_columns is None:
        text_columns = [c for c in frame.columns if c not in (id_col, title_col, LINE)]
    else:
        for column in text_columns:
            _find_column(frame, "title", column, path, True)
    report = LoadReport(source=str(path), rows_read=len(frame))
    items = []
    for record in frame.to_dict("records"):
        fields = {c: _field_text(record.get(c)) for c in text_columns}
        items.append(Item(item_id=str(record[id_col]).strip(), title=str(record[title_col]).strip(), fields=fields))
    catalog = Catalog(items)
    report.drop("repeated item ids (kept the first)", len(items) - len(catalog))
    report.rows_kept = len(catalog)
    return catalog, report


def load_users(path: Path | str, *, user_column: str | None = None, encoding: str = "utf-8"
               ) -> tuple[dict[str, dict[str, str]], LoadReport]:
    """Load a users file: a user id and attribute columns (``gender``, ``age``, ``occupation``, ...),
    each read as text. Used only to group evaluation figures; blank values become ``"unknown"``.

    Raises:
        DataError: naming the file, line and problem (no user id column, empty id, no attribute column).
    """
    path = Path(path)
    frame, unit = read_table(path, encoding)
    id_col = _find_column(frame, "user_id", user_column, path, True)
    blank = _blank(frame[id_col])
    if blank.any():
        raise DataError(path, "empty user_id", _first_bad(frame, blank), unit)
    columns = [c for c in frame.columns if c not in (id_col, LINE)]
    if not columns:
        raise DataError(path, "no attribute column besides the user id (e.g. gender, age, occupation)")
    report = LoadReport(source=str(path), rows_read=len(frame))
    users: dict[str, dict[str, str]] = {}
    for record in frame.to_dict("records"):
        user = str(record[id_col]).strip()
        if user in users:
            continue
        users[user] = {c: (_field_text(record.get(c)) or "unknown") for c in columns}
    report.drop("repeated user ids (kept the first)", len(frame) - len(users))
    report.rows_kept = len(users)
    return users, report
