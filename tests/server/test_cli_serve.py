"""The ``serve`` command's options; the running server is tested in tests/integration/serve."""

from __future__ import annotations

from typer.testing import CliRunner

from promptrec.cli import app
from promptrec.server import ServerSettings

runner = CliRunner()


def test_serve_help_lists_the_serving_options():
    result = runner.invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--host", "--port", "--concurrency", "--queue", "--max-sessions", "--session-ttl", "--no-llm"):
        assert option in result.output


def test_invalid_serve_options_are_one_clear_line():
    result = runner.invoke(app, ["serve", "--concurrency", "0", "--no-llm"])
    assert result.exit_code == 2
    assert "invalid serve option" in result.output and "concurrency" in result.output
    assert "Traceback" not in result.output


def test_server_settings_default_to_loopback_and_read_the_environment(monkeypatch):
    defaults = ServerSettings()
    assert defaults.host == "127.0.0.1" and defaults.port == 8000 and defaults.concurrency == 2 and defaults.queue == 8
    monkeypatch.setenv("PROMPTREC_SERVE_QUEUE", "0")
    monkeypatch.setenv("PROMPTREC_SERVE_CONCURRENCY", "5")
    assert ServerSettings().queue == 0 and ServerSettings().concurrency == 5
