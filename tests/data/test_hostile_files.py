"""Data files that used to end in a traceback or in silently wrong data: each is a DataError that
names the file and line, or (a very long field) simply loads."""

import logging

import pytest

from promptrec.data import DataError, load_catalog, load_folder, load_interactions


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_a_one_megabyte_field_loads(tmp_path):
    long = "x" * 1_000_000
    catalog, _ = load_catalog(write(tmp_path / "items.csv", f"item_id,title,notes\n1,Big,{long}\n2,Small,y\n"))
    assert catalog["1"].fields["notes"] == long and catalog["2"].title == "Small"


def test_a_one_megabyte_field_leaves_the_csv_limit_as_it_was(tmp_path):
    import csv

    before = csv.field_size_limit()
    load_catalog(write(tmp_path / "items.csv", "item_id,title\n1," + "t" * 300_000 + "\n"))
    assert csv.field_size_limit() == before


@pytest.mark.parametrize("header", ["item_id,title,title", "item_id,title, title ", "item_id,item_id,title"])
def test_a_repeated_header_column_names_the_column(tmp_path, header):
    path = write(tmp_path / "items.csv", f"{header}\n1,a,b\n")
    with pytest.raises(DataError) as err:
        load_catalog(path)
    assert err.value.line == 1 and "appears more than once" in err.value.problem and "items.csv" in str(err.value)


def test_a_repeated_parquet_column(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "r.parquet"
    pq.write_table(pa.Table.from_arrays([pa.array(["1"]), pa.array(["2"]), pa.array(["3"])],
                                        names=["user_id", "item_id", "item_id"]), path)
    with pytest.raises(DataError) as err:
        load_interactions(path)
    assert "r.parquet" in str(err.value) and "item_id" in err.value.problem


def test_the_line_column_name_is_reserved(tmp_path):
    with pytest.raises(DataError, match="'_line' is reserved"):
        load_catalog(write(tmp_path / "items.csv", "item_id,title,_line\n1,a,7\n"))
    with pytest.raises(DataError, match="line 1: the key '_line' is reserved"):
        load_catalog(write(tmp_path / "items.jsonl", '{"item_id": "1", "title": "a", "_line": 3}\n'))


def test_a_folder_named_like_a_data_file(tmp_path):
    (tmp_path / "items.csv").mkdir()
    write(tmp_path / "interactions.csv", "user_id,item_id,timestamp\n1,1,1\n")
    with pytest.raises(DataError) as err:
        load_folder(tmp_path)
    assert "items.csv" in str(err.value) and "is a folder" in str(err.value)


@pytest.mark.parametrize("stamp", ["1e30", "99999999999999999999", "-9223372036854775809", "inf", "-inf",
                                   "4611686018427387904"])
def test_timestamps_that_do_not_fit_are_refused_with_the_line(tmp_path, stamp):
    path = write(tmp_path / "r.csv", f"user_id,item_id,timestamp\n1,1,5\n1,2,{stamp}\n")
    with pytest.raises(DataError) as err:
        load_interactions(path)
    assert err.value.line == 3 and repr(stamp) in err.value.problem and "out of range" in err.value.problem


def test_large_but_valid_timestamps_are_kept_exactly(tmp_path):
    path = write(tmp_path / "r.csv", "user_id,item_id,timestamp\n1,1,-100\n1,2,1700000000000\n")
    log, _ = load_interactions(path)
    assert log.timestamps("1") == [-100, 1_700_000_000_000]


@pytest.mark.parametrize("rating", ["-1", "-0.5", "inf", "-inf", "Infinity"])
def test_negative_or_infinite_ratings_are_refused_with_the_line(tmp_path, rating):
    path = write(tmp_path / "r.csv", f"user_id,item_id,timestamp,rating\n1,1,5,4\n1,2,6,{rating}\n")
    with pytest.raises(DataError) as err:
        load_interactions(path)
    assert err.value.line == 3 and repr(rating) in err.value.problem


def test_zero_and_missing_ratings_are_fine(tmp_path):
    path = write(tmp_path / "r.csv", "user_id,item_id,timestamp,rating\n1,1,5,0\n1,2,6,\n")
    log, _ = load_interactions(path)
    assert log.ratings("1") == {"1": 0.0}


def test_jsonl_ratings_are_checked_too(tmp_path):
    path = write(tmp_path / "r.jsonl", '{"user_id": 1, "item_id": 1, "timestamp": 1, "rating": -2}\n')
    with pytest.raises(DataError, match="line 1: rating '-2' is out of range"):
        load_interactions(path)


def test_loaders_report_drops_without_logging_them(tmp_path, caplog):
    """The caller (the Recommender) logs a dataset's reports once; the loaders only return them."""
    from promptrec.data import Catalog, Item

    catalog = Catalog([Item(item_id="1", title="A")])
    path = write(tmp_path / "r.csv", "user_id,item_id,timestamp\n1,1,5\n1,9,6\n")
    with caplog.at_level(logging.INFO):
        _, report = load_interactions(path, catalog=catalog)
    assert report.dropped == {"rows with item ids not in the catalog": 1}
    assert not [r for r in caplog.records if "dropped" in r.getMessage()]
