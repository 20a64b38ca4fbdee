"""Data: typed items and interactions, loaders for CSV/JSONL/Parquet, and MovieLens."""

from __future__ import annotations

from pathlib import Path

from . import movielens
from .errors import DataError, DatasetUnavailable
from .loaders import load_catalog, load_interactions, load_users
from .readers import SUFFIXES
from .types import Catalog, Dataset, InteractionLog, Item, LoadReport

__all__ = [
    "Catalog",
    "DataError",
    "Dataset",
    "DatasetUnavailable",
    "InteractionLog",
    "Item",
    "LoadReport",
    "load_catalog",
    "load_dataset",
    "load_folder",
    "load_interactions",
    "load_users",
]


def _one_file(folder: Path, stem: str, required: bool = True) -> Path | None:
    found = [folder / f"{stem}{suffix}" for suffix in SUFFIXES if (folder / f"{stem}{suffix}").exists()]
    if not found and not required:
        return None
    if not found:
        raise DataError(folder / stem, f"no {stem} file; expected {stem}.csv, {stem}.jsonl or {stem}.parquet")
    return found[0]


def load_folder(folder: Path | str) -> Dataset:
    """Load a folder holding ``items.{csv,jsonl,parquet}`` and ``interactions.{csv,jsonl,parquet}``,
    and optionally ``users.{csv,jsonl,parquet}`` (a user id plus attributes such as gender or age,
    which the evaluation groups its figures by)."""
    folder = Path(folder).expanduser()
    catalog, catalog_report = load_catalog(_one_file(folder, "items"))
    interactions, report = load_interactions(_one_file(folder, "interactions"), catalog=catalog)
    reports = [catalog_report, report]
    users = None
    users_path = _one_file(folder, "users", required=False)
    if users_path is not None:
        users, users_report = load_users(users_path)
        reports.append(users_report)
    return Dataset(folder.name, catalog, interactions, reports, users=users)


def load_dataset(name: str, data_dir: Path | str, allow_download: bool = True) -> Dataset:
    """Load a dataset by name (``ml-latest-small``) or from a folder path of items + interactions."""
    if name == movielens.NAME:
        return movielens.load(Path(data_dir), allow_download)
    folder = Path(name).expanduser()
    if not folder.is_dir():
        folder = Path(data_dir).expanduser() / name
    if not folder.is_dir():
        raise DatasetUnavailable(
            f"unknown dataset {name!r}: not {movielens.NAME!r} and not a folder (looked in {folder}). "
            "A custom dataset is a folder with items.csv|jsonl|parquet and interactions.csv|jsonl|parquet."
        )
    return load_folder(folder)
