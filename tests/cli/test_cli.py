import json

import pytest
from typer.testing import CliRunner

from promptrec.cli import app
from promptrec.testing import write_dataset_folder

runner = CliRunner()


@pytest.fixture
def folder(tmp_path, tiny):
    """The tiny dataset written as a custom dataset folder (items.csv + interactions.csv)."""
    write_dataset_folder(tiny, tmp_path)
    return tmp_path


def invoke(folder, *args, input=None):
    fusion = '{"embedding": 0.5, "ease": 1.0}'
    env = {"PROMPTREC_FUSION__WEIGHTS": fusion, "PROMPTREC_FUSION__MIN_ITEM_SUPPORT": "1", "COLUMNS": "160"}
    return runner.invoke(app, ["--dataset", str(folder), *args], input=input, env=env)


@pytest.mark.parametrize("command", [[], ["index"], ["recommend"], ["chat"], ["models"]])
def test_help_everywhere(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def test_index_then_recommend_json(folder):
    result = invoke(folder, "index")
    assert result.exit_code == 0, result.output
    assert "Stored 24 item vectors" in result.output
    result = invoke(folder, "recommend", "1", "--k", "3", "--json", "--no-llm")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["user_id"] == "1" and len(data["items"]) == 3 and data["ordered_by"] == "fusion"
    assert all(item["cited_history"] for item in data["items"])


def test_recommend_table_and_exclude_by_title(folder):
    result = invoke(folder, "recommend", "1", "--k", "2", "--no-llm", "--exclude", "Space Adventure 1 (1990)")
    assert result.exit_code == 0, result.output
    assert "Recommendations for user 1" in result.output and "Space Adventure 1 (1990)" not in result.output


def test_unknown_user_is_one_clear_line(folder):
    result = invoke(folder, "recommend", "nobody", "--no-llm")
    assert result.exit_code == 2
    assert "unknown user 'nobody'" in result.output and "Traceback" not in result.output


def test_missing_dataset_is_one_clear_line(tmp_path):
    result = runner.invoke(app, ["--dataset", str(tmp_path / "nope"), "recommend", "1", "--no-llm"])
    assert result.exit_code == 2 and "unknown dataset" in result.output


def test_chat_session_through_the_cli(folder):
    script = "\n".join([
        "/user 1",
        "more like Romantic Comedy 2 (1991) but funnier",
        "why #1",
        "exclude Romantic Comedy 3 (1992)",
        "/like Nonexistent Thing",
        "/frobnicate",
        "/help",
        "/quit",
    ]) + "\n"
    result = invoke(folder, "chat", "--no-llm", "--k", "3", input=script)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Now recommending for user 1" in out
    assert "understood: like Romantic Comedy 2 (1991); mood: funny" in out and "Request: more like" in out
    assert "based on:" in out
    assert "Excluded Romantic Comedy 3 (1992)" in out
    assert "no catalog item matches: 'Nonexistent Thing'" in out
    assert "Unknown command /frobnicate" in out
    assert out.rstrip().endswith("Bye.")


def test_chat_describing_tastes_without_a_user(folder):
    script = "/like Crime Thriller 1 (1990)\nsomething tense\n/quit\n"
    result = invoke(folder, "chat", "--no-llm", "--k", "2", input=script)
    assert result.exit_code == 0, result.output
    assert "Recommendations for your history" in result.output and "Crime Thriller" in result.output


def test_models_lists_the_packaged_models():
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0
    assert "small" in result.output and "SmolLM2-135M-Instruct.Q4_1.gguf" in result.output and "installed" in result.output
    assert "in use: backend llamacpp, model quality" in result.output
