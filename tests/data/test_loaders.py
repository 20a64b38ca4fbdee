import json

import pandas as pd
import pytest

from promptrec.data import Catalog, DataError, Item, load_catalog, load_interactions


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


@pytest.fixture
def catalog():
    return Catalog([Item(item_id=str(i), title=f"Item {i}") for i in (1, 2, 3)])


def test_csv_loads_typed_rows_in_time_order(tmp_path):
    path = write(tmp_path / "r.csv", "userId,movieId,rating,timestamp\n1,2,4.0,20\n1,1,3.5,10\n2,3,5,15\n")
    log, report = load_interactions(path)
    assert log.history("1") == ["1", "2"]
    assert log.timestamps("1") == [10, 20]
    assert log.ratings("2") == {"3": 5.0}
    assert report.rows_read == 3 and report.rows_kept == 3 and report.dropped == {}


def test_jsonl_and_parquet_give_the_same_log(tmp_path):
    rows = [{"user_id": "u", "item_id": "1", "timestamp": 5}, {"user_id": "u", "item_id": "2", "timestamp": 7}]
    jsonl = write(tmp_path / "r.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    parquet = tmp_path / "r.parquet"
    pd.DataFrame(rows).to_parquet(parquet)
    a, _ = load_interactions(jsonl)
    b, _ = load_interactions(parquet)
    assert a.history("u") == b.history("u") == ["1", "2"]


def test_iso_dates_become_unix_seconds(tmp_path):
    path = write(tmp_path / "r.csv", "user,item,time\nu,1,1970-01-01T00:01:40Z\n")
    log, _ = load_interactions(path)
    assert log.timestamps("u") == [100]


def test_missing_column_names_the_file_and_what_exists(tmp_path):
    path = write(tmp_path / "r.csv", "userId,movieId,rating\n1,2,4\n")
    with pytest.raises(DataError) as err:
        load_interactions(path)
    assert "r.csv" in str(err.value) and "timestamp" in str(err.value) and "userId, movieId, rating" in str(err.value)


def test_bad_timestamp_names_the_line(tmp_path):
    path = write(tmp_path / "r.csv", "userId,movieId,timestamp\n1,1,10\n1,2,10\n1,3,yesterday\n")
    with pytest.raises(DataError) as err:
        load_interactions(path)
    assert err.value.line == 4 and "yesterday" in err.value.problem


def test_bad_rating_and_empty_id_name_the_line(tmp_path):
    path = write(tmp_path / "r.csv", "userId,movieId,rating,timestamp\n1,1,good,10\n")
    with pytest.raises(DataError, match="line 2: rating 'good'"):
        load_interactions(path)
    path = write(tmp_path / "s.csv", "userId,movieId,timestamp\n1,1,10\n,2,11\n")
    with pytest.raises(DataError, match="line 3: empty user_id"):
        load_interactions(path)


def test_line_numbers_count_quoted_multiline_fields(tmp_path):
    path = write(tmp_path / "c.csv", 'id,title,notes\n1,A,"two\nlines"\n2,,x\n')
    with pytest.raises(DataError) as err:
        load_catalog(path)
    assert err.value.line == 4


def test_wrong_field_count_names_the_line(tmp_path):
    path = write(tmp_path / "r.csv", "userId,movieId,timestamp\n1,1,10\n1,2,10,99\n")
    with pytest.raises(DataError, match="line 3: expected 3 fields"):
        load_interactions(path)


def test_unknown_items_and_repeats_are_dropped_and_counted(tmp_path, catalog):
    path = write(tmp_path / "r.csv", "userId,movieId,timestamp\n1,1,10\n1,9,11\n1,1,12\n2,2,5\n")
    log, report = load_interactions(path, catalog=catalog)
    assert report.dropped == {"rows with item ids not in the catalog": 1, "repeated user-item pairs (kept the latest)": 1}
    assert report.rows_kept == 2 == len(log)
    assert log.timestamps("1") == [12]
    assert "dropped 1 repeated" in str(report)


def test_empty_file_and_header_only(tmp_path):
    with pytest.raises(DataError, match="empty"):
        load_interactions(write(tmp_path / "a.csv", ""))
    with pytest.raises(DataError, match="no rows"):
        load_interactions(write(tmp_path / "b.csv", "userId,movieId,timestamp\n"))


def test_wrong_encoding_names_the_line(tmp_path):
    path = write(tmp_path / "c.csv", "id,title\n1,Ok\n2,Caf\u00e9\n", encoding="latin-1")
    with pytest.raises(DataError) as err:
        load_catalog(path)
    assert err.value.line == 3 and "UTF-8" in err.value.problem
    catalog, _ = load_catalog(path, encoding="latin-1")
    assert catalog["2"].title == "Café"


def test_invalid_json_line(tmp_path):
    path = write(tmp_path / "r.jsonl", '{"user_id": "u", "item_id": "1", "timestamp": 1}\n{oops\n')
    with pytest.raises(DataError, match="line 2: not valid JSON"):
        load_interactions(path)


def test_unknown_file_type(tmp_path):
    with pytest.raises(DataError, match="unknown file type"):
        load_interactions(write(tmp_path / "r.xlsx", "x"))


def test_catalog_text_fields_and_title_lookup(tmp_path):
    path = write(tmp_path / "items.csv", "movieId,title,genres\n1,\"Matrix, The (1999)\",Sci-Fi\n2,Heat (1995),Crime\n2,Dup,X\n")
    catalog, report = load_catalog(path)
    assert len(catalog) == 2 and report.dropped == {"repeated item ids (kept the first)": 1}
    assert catalog["1"].fields == {"genres": "Sci-Fi"}
    assert "genres: Sci-Fi" in catalog["1"].text()
    assert catalog.find("The Matrix").item_id == "1"
    assert catalog.find("heat").item_id == "2"
    assert catalog.find("Heat (1996)").item_id == "2"  # fuzzy
    assert catalog.find("Completely Different") is None


def test_a_users_file_is_read_as_attributes_by_user(tmp_path):
    from promptrec.data import load_users

    path = write(tmp_path / "users.csv", "UserID,gender,age,zip\n1,F,25,\n2,M,35,10001\n1,M,50,2\n")
    users, report = load_users(path)
    assert users == {"1": {"gender": "F", "age": "25", "zip": "unknown"}, "2": {"gender": "M", "age": "35", "zip": "10001"}}
    assert report.rows_kept == 2 and report.dropped == {"repeated user ids (kept the first)": 1}
    with pytest.raises(DataError, match="no attribute column"):
        load_users(write(tmp_path / "u2.csv", "user_id\n1\n"))
    with pytest.raises(DataError, match="missing column 'user_id'"):
        load_users(write(tmp_path / "u3.csv", "gender\nF\n"))
    with pytest.raises(DataError, match=r"u4.csv.*empty user_id"):
        load_users(write(tmp_path / "u4.csv", "user_id,gender\n1,F\n,M\n"))


def test_a_folder_without_a_users_file_has_no_users_and_keeps_its_hash(tmp_path, tiny):
    from promptrec.data import load_folder
    from promptrec.state import content_digest
    from promptrec.testing import with_users, write_dataset_folder

    write_dataset_folder(tiny, tmp_path / "plain")
    write_dataset_folder(with_users(tiny), tmp_path / "people")
    plain, people = load_folder(tmp_path / "plain"), load_folder(tmp_path / "people")
    assert plain.users is None and len(people.users) == len(tiny.interactions.users)
    assert content_digest(plain) != content_digest(people)  # the groups depend on the users file
    assert content_digest(plain) == content_digest(tiny)
