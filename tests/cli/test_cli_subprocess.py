"""The real command line (``python -m promptrec`` in a subprocess): every known failure is one
``error:`` line on stderr and exit 2, and hostile catalog text and chat input are shown literally."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from promptrec.data import Catalog, Dataset, Item
from promptrec.testing import free_port, tiny_dataset, write_dataset_folder

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
WEIGHTS = '{"embedding": 0.5, "ease": 1.0}'
HOSTILE = ["[/dim]", "[link=http://evil.example]click[/link]", "[blink]b[/blink]", "\x1b[31mred",
           "\x1b]8;;http://evil.example\x07osc\x1b]8;;\x07", "[bold red]loud"]


def run(*args, input=None, env=None, timeout=300):
    environment = {**os.environ, "PROMPTREC_FUSION__WEIGHTS": WEIGHTS, "PROMPTREC_FUSION__MIN_ITEM_SUPPORT": "1",
                   "COLUMNS": "250", "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "promptrec", *args], input=input, capture_output=True,
                          text=True, env=environment, timeout=timeout)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """The tiny dataset with hostile titles on every space-adventure item (user 1's genre)."""
    tiny = tiny_dataset()
    items = []
    for n, item in enumerate(tiny.catalog):
        title = f"{item.title} {HOSTILE[n % len(HOSTILE)]}" if item.item_id.startswith("10") else item.title
        items.append(Item(item_id=item.item_id, title=title, fields=item.fields))
    path = tmp_path_factory.mktemp("hostile")
    write_dataset_folder(Dataset("hostile", Catalog(items), tiny.interactions, []), path)
    return path


def run_failing(*args, env=None):
    """Like run, on a narrow terminal: a long message must still be one line (no wrapping)."""
    return run(*args, env={"COLUMNS": "60", **(env or {})})


def assert_one_error_line(result, *expected):
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.stderr + result.stdout
    for text in expected:
        assert text in lines[0], (text, lines[0])


def test_chat_with_hostile_titles_and_input_shows_them_literally(folder):
    script = "/user 1\n[/dim] comedies [link=http://evil.example]x[/link]\nwhy #1\n/quit\n"
    result = run("--dataset", str(folder), "chat", "--no-llm", "--k", "5", input=script,
                 env={"FORCE_COLOR": "1", "TTY_COMPATIBLE": "1"})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert re.search(r"\x1b\[[0-9;]*m", out), "colour was forced, so rich's own styling is there"
    assert "\x1b]8;" not in out and "\x1b[5m" not in out and "\x07" not in out
    visible = re.sub(r"\x1b\[[0-9;]*m", "", out)  # without rich's own styling (SGR) ...
    assert "\x1b" not in visible  # ... no escape sequence is left: none was injected
    assert "Request: [/dim] comedies [link=http://evil.example]x[/link]" in visible
    shown = [h for h in ("[/dim]", "[link=http://evil.example]click[/link]", "[blink]b[/blink]", "[bold red]loud")
             if h in visible.replace("[/dim] comedies", "")]
    assert len(shown) >= 2, visible  # hostile titles are recommended or cited, and shown as typed
    assert visible.rstrip().endswith("Bye.")


def test_recommend_with_hostile_titles(folder):
    result = run("--dataset", str(folder), "recommend", "1", "--no-llm", "--k", "8")
    assert result.returncode == 0, result.stderr
    assert "[link=http://evil.example]click[/link]" in result.stdout or "[blink]b[/blink]" in result.stdout
    assert "\x1b" not in result.stdout


def test_data_error(tmp_path):
    (tmp_path / "items.csv").write_text("item_id,title,title\n1,a,b\n")
    (tmp_path / "interactions.csv").write_text("user_id,item_id,timestamp\n1,1,5\n")
    result = run_failing("--dataset", str(tmp_path), "recommend", "1", "--no-llm")
    assert_one_error_line(result, "items.csv, line 1", "'title' appears more than once")


def test_model_error(folder, tmp_path):
    missing = tmp_path / "missing.gguf"
    result = run_failing("--dataset", str(folder), "--model", str(missing), "recommend", "1")
    assert_one_error_line(result, f"no model file {missing}", "PROMPTREC_LLM__MODEL")


def test_store_error(folder):
    url = f"http://127.0.0.1:{free_port()}"
    result = run_failing("--dataset", str(folder), "--chroma-url", url, "recommend", "1", "--no-llm")
    assert_one_error_line(result, f"cannot reach the Chroma server at {url}", "--chroma-url")


@pytest.mark.parametrize(("weights", "expected"), [
    ('{"embedding": 0.5, "nope": 1}', "unknown fusion source 'nope'"),
    ('{"ease": NaN}', "finite number"),
    ("{not json", "not valid JSON"),
])
def test_config_error_bad_weights(folder, weights, expected):
    result = run_failing("--dataset", str(folder), "recommend", "1", "--no-llm", env={"PROMPTREC_FUSION__WEIGHTS": weights})
    assert_one_error_line(result, "PROMPTREC_FUSION__WEIGHTS", expected)


def test_config_error_state_dir_is_a_file(folder, tmp_path):
    afile = tmp_path / "state.txt"
    afile.write_text("not a folder")
    result = run_failing("--dataset", str(folder), "recommend", "1", "--no-llm", env={"PROMPTREC_STATE_DIR": str(afile)})
    assert_one_error_line(result, "PROMPTREC_STATE_DIR", "is a file, not a folder")
    result = run_failing("--state-dir", str(afile), "--dataset", str(folder), "models")
    assert_one_error_line(result, "is a file, not a folder")


def test_config_error_bad_backend_option(folder):
    result = run_failing("--dataset", str(folder), "--backend", "bogus", "recommend", "1")
    assert_one_error_line(result, "'llamacpp' or 'openai'")


def test_user_input_error_with_markup_in_the_user_id(folder):
    result = run_failing("--dataset", str(folder), "recommend", "[/dim][link=http://evil.example]x", "--no-llm")
    assert_one_error_line(result, "unknown user '[/dim][link=http://evil.example]x'")


def test_dropped_rows_are_reported_once(tmp_path):
    tiny = tiny_dataset()
    write_dataset_folder(tiny, tmp_path)
    with (tmp_path / "interactions.csv").open("a") as out:
        out.write("1,99999,5,3.0\n")  # an item that is not in the catalog
    result = run("--dataset", str(tmp_path), "recommend", "1", "--no-llm", "--json")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("dropped 1 rows with item ids not in the catalog") == 1, result.stderr
