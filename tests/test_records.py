"""The one resumable record log (promptrec.records): item features, eval and position-bias records."""

import pytest
from pydantic import BaseModel

from promptrec.errors import StoreError
from promptrec.records import RecordLog


class Row(BaseModel):
    user: str
    value: float


def test_records_are_kept_by_key_the_last_one_winning(tmp_path):
    log = RecordLog(tmp_path / "deep" / "r.jsonl", Row, key=lambda r: r.user)
    assert log.load() == {}
    log.append(Row(user="1", value=1.0))
    log.append(Row(user="2", value=2.0))
    log.append(Row(user="1", value=3.0))
    assert {k: r.value for k, r in log.load().items()} == {"1": 3.0, "2": 2.0}


def test_a_line_cut_by_a_crash_is_redone_and_then_dropped(tmp_path):
    path = tmp_path / "r.jsonl"
    log = RecordLog(path, Row, key=lambda r: r.user)
    log.append(Row(user="7", value=1.0))
    with path.open("a") as handle:
        handle.write('{"user": "8", "val')  # the process died mid-line
    assert set(log.load()) == {"7"}  # user 8 is redone
    log.append(Row(user="8", value=2.0))
    assert set(log.load()) == {"7", "8"}
    assert path.read_text().splitlines() == [Row(user="7", value=1.0).model_dump_json(),
                                             Row(user="8", value=2.0).model_dump_json()]


def test_an_unreadable_line_in_the_middle_is_an_error_naming_file_and_line(tmp_path):
    path = tmp_path / "r.jsonl"
    good = Row(user="1", value=1.0).model_dump_json()
    path.write_text(f"{good}\nnot json\n{good}\n")
    with pytest.raises(StoreError, match=r"r\.jsonl:2: unreadable record.*delete that line"):
        RecordLog(path, Row, key=lambda r: r.user).load()
