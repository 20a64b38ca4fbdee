"""MovieLens ml-latest-small: find it in the data dir, or download it from GroupLens."""

from __future__ import annotations

import io
import logging
import zipfile
from collections import Counter
from pathlib import Path

from .errors import DataError, DatasetUnavailable
from .loaders import load_interactions
from .readers import read_table
from .types import Catalog, Dataset, Item, LoadReport

log = logging.getLogger(__name__)

NAME = "ml-latest-small"
URL = "https://files.grouplens.org/datasets/movielens/ml-latest-small.zip"
FILES = ("movies.csv", "ratings.csv", "tags.csv", "README.txt")
LICENCE = (
    "MovieLens ml-latest-small (c) GroupLens Research, University of Minnesota; non-commercial use; "
    "F. Maxwell Harper and Joseph A. Konstan. 2015. The MovieLens Datasets: History and Context. "
    "ACM TiiS 5, 4: 19:1-19:19. https://doi.org/10.1145/2827872"
)


def download(data_dir: Path, url: str = URL, timeout: float = 60.0) -> Path:
    """Download and unpack ml-latest-small into ``data_dir`` (README.txt with its licence included)."""
    import httpx

    target = data_dir / NAME
    try:
        response = httpx.get(url, timeout=timeout, follow_redirects=True)
        response.raise_for_status()
    except httpx.HTTPError as err:
        raise DatasetUnavailable(
            f"{NAME} is not in {target} and downloading it from {url} failed ({err}).\n"
            f"Download {url} yourself and unzip it so that {target / 'ratings.csv'} exists, "
            f"or set PROMPTREC_DATA_DIR to the folder that holds {NAME}/."
        ) from None
    data_dir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        archive.extractall(data_dir)
    log.info("downloaded %s into %s", NAME, target)
    return target


def locate(data_dir: Path, allow_download: bool = True) -> Path:
    """The folder holding ml-latest-small, downloading it when missing and allowed."""
    folder = Path(data_dir).expanduser() / NAME
    missing = [f for f in ("movies.csv", "ratings.csv") if not (folder / f).exists()]
    if not missing:
        return folder
    if not allow_download:
        raise DatasetUnavailable(
            f"{NAME} is missing from {folder} ({', '.join(missing)} not found) and downloading is off.\n"
            f"Unzip {URL} into {Path(data_dir).expanduser()}, or set PROMPTREC_DATA_DIR to the folder that holds {NAME}/."
        )
    return download(Path(data_dir).expanduser())


def _tags_by_movie(path: Path, per_item: int) -> dict[str, list[str]]:
    if not path.exists():
        return {}
    frame, _ = read_table(path)
    for column in ("movieId", "tag"):
        if column not in frame.columns:
            raise DataError(path, f"missing column {column!r}; is this a MovieLens tags.csv?")
    counts: dict[str, Counter] = {}
    for movie, tag in zip(frame["movieId"], frame["tag"]):
        tag = str(tag).strip().lower()
        if tag:
            counts.setdefault(str(movie), Counter())[tag] += 1
    return {movie: [t for t, _ in c.most_common(per_item)] for movie, c in counts.items()}


def load_catalog(folder: Path, tags_per_item: int = 8) -> tuple[Catalog, LoadReport]:
    """Movies as items: title (with year), genres and the most used user tags as text."""
    path = folder / "movies.csv"
    frame, _ = read_table(path)
    for column in ("movieId", "title", "genres"):
        if column not in frame.columns:
            raise DataError(path, f"missing column {column!r}; is this a MovieLens movies.csv?")
    tags = _tags_by_movie(folder / "tags.csv", tags_per_item)
    items = []
    for movie, title, genres in zip(frame["movieId"], frame["title"], frame["genres"]):
        genre_text = "" if genres == "(no genres listed)" else ", ".join(str(genres).split("|"))
        fields = {"genres": genre_text, "tags": ", ".join(tags.get(str(movie), []))}
        items.append(Item(item_id=str(movie), title=str(title).strip(), fields=fields))
    catalog = Catalog(items)
    report = LoadReport(source=str(path), rows_read=len(frame), rows_kept=len(catalog))
    report.drop("repeated item ids (kept the first)", len(items) - len(catalog))
    return catalog, report


def load(data_dir: Path, allow_download: bool = True) -> Dataset:
    """Load ml-latest-small as a :class:`Dataset` (every rating is an interaction)."""
    folder = locate(data_dir, allow_download)
    catalog, catalog_report = load_catalog(folder)
    interactions, report = load_interactions(folder / "ratings.csv", catalog=catalog)
    return Dataset(NAME, catalog, interactions, [catalog_report, report])
