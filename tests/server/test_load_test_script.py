"""eval/load_test.py: loopback only, bounded, correct percentiles (the real run is an integration test)."""

from __future__ import annotations

import pytest

from promptrec.testing import load_eval_script

load_test = load_eval_script("load_test")


@pytest.mark.parametrize("url", ["http://example.com:8000", "http://10.0.0.5:8000", "https://127.0.0.1:8000",
                                 "http://127.0.0.1.example.com/"])
def test_only_loopback_urls_are_accepted(url):
    with pytest.raises(ValueError, match="only go to this machine"):
        load_test.check_url(url)


def test_loopback_urls_pass():
    assert load_test.check_url("http://127.0.0.1:8765/") == "http://127.0.0.1:8765"
    assert load_test.check_url("http://localhost:1") == "http://localhost:1"


@pytest.mark.parametrize(("requests", "concurrency"), [(0, 1), (10_001, 1), (10, 0), (10, 65)])
def test_runs_are_bounded(requests, concurrency):
    with pytest.raises(ValueError, match="bounds"):
        load_test.run("http://127.0.0.1:9", requests, concurrency, ["1"])


def test_percentiles_and_user_lists():
    values = [float(v) for v in range(1, 101)]
    assert load_test.percentile(values, 50) == 50 and load_test.percentile(values, 95) == 95
    assert load_test.percentile([3.0], 95) == 3.0
    assert load_test.parse_users("1-3,9") == ["1", "2", "3", "9"]
