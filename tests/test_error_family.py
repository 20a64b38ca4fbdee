"""One error family: known failures are PromptrecError subclasses; the CLI prints them as one line
and exits 2, and anything else keeps its traceback."""

import pytest
import typer
from typer.testing import CliRunner

from promptrec.cli.app import _friendly_errors
from promptrec.errors import ConfigError, DataError, ModelError, PromptrecError, StoreError, UserInputError
from promptrec.llm import LLMCache


def test_a_file_that_is_not_a_sqlite_cache_is_a_store_error(tmp_path):
    path = tmp_path / "llm-cache.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError) as err:
        LLMCache(path)
    assert str(path) in str(err.value) and "delete the file" in str(err.value)


def cli_raising(error: Exception) -> typer.Typer:
    app = typer.Typer()

    @app.command()
    def fail() -> None:
        with _friendly_errors():
            raise error

    return app


@pytest.mark.parametrize("error", [
    DataError("bad [/dim] data\nsecond line"), ModelError("no model"), StoreError("no store"),
    ConfigError("bad setting"), UserInputError("unknown [link=http://evil]x[/link] user"),
])
def test_known_errors_are_one_plain_line_and_exit_2(error):
    result = CliRunner().invoke(cli_raising(error), [])
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0] == "error: " + " ".join(str(error).split())


def test_other_errors_keep_their_traceback():
    result = CliRunner().invoke(cli_raising(KeyError("boom")), [])
    assert result.exit_code == 1 and isinstance(result.exception, KeyError)


def test_every_family_member_is_a_promptrec_error_and_keeps_its_builtin_base():
    for cls, base in ((DataError, ValueError), (ModelError, RuntimeError), (StoreError, RuntimeError),
                      (ConfigError, ValueError), (UserInputError, ValueError)):
        assert issubclass(cls, PromptrecError) and issubclass(cls, base)


def test_log_lines_lose_escape_sequences():
    import logging

    from promptrec.cli.app import _PlainFormatter

    record = logging.LogRecord("promptrec.llm", logging.WARNING, __file__, 1, "model call failed: %s",
                               ("\x1b]8;;http://evil\x07click\x1b]8;;\x07 \x1b[5mblink",), None)
    line = _PlainFormatter("%(levelname)s %(name)s: %(message)s").format(record)
    assert line == "WARNING promptrec.llm: model call failed: click blink"
