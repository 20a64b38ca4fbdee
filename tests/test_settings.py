"""Invalid settings are one ConfigError naming the PROMPTREC_* variable and what is allowed."""

import pytest

from promptrec.errors import ConfigError
from promptrec.retrieval import CLASSIC, COLD, EMBEDDING, scorer_registry
from promptrec.settings import FUSION_SOURCES, SCORER_SOURCES, FusionSettings, Settings


def test_fusion_source_names_match_the_scorers_build_scorers_knows():
    assert set(SCORER_SOURCES) == set(scorer_registry())
    assert set(FUSION_SOURCES) == {EMBEDDING, COLD, CLASSIC, *scorer_registry()}


@pytest.mark.parametrize(("value", "expected"), [
    ("{bad", "not valid JSON"),
    ("ease", "not valid JSON"),
    ('{"nope": 1}', "unknown fusion source 'nope'; known: embedding, classic, ease"),
    ('{"ease": -1}', "finite numbers >= 0"),
    ('{"ease": NaN}', "finite number"),
    ('{"ease": "inf"}', "finite number"),
    ('{"ease": Infinity}', "finite number"),
    ('{"ease": 0, "embedding": 0}', "at least one source a weight above 0"),
    ('{"ease": "x"}', "valid number"),
])
def test_bad_fusion_weights_are_a_config_error(monkeypatch, value, expected):
    monkeypatch.setenv("PROMPTREC_FUSION__WEIGHTS", value)
    with pytest.raises(ConfigError) as err:
        Settings()
    message = str(err.value)
    assert "PROMPTREC_FUSION__WEIGHTS" in message and expected in message
    assert "\n" not in message


def test_good_weights_pass(monkeypatch):
    monkeypatch.setenv("PROMPTREC_FUSION__WEIGHTS", '{"embedding": 0.5, "ease": 1, "itemknn": 0}')
    assert Settings().fusion.weights == {"embedding": 0.5, "ease": 1.0, "itemknn": 0.0}


@pytest.mark.parametrize(("variable", "value", "expected"), [
    ("PROMPTREC_LLM__BACKEND", "bogus", "'llamacpp' or 'openai'"),
    ("PROMPTREC_LLM__MODLE", "small", "unknown setting; known: backend, model"),
    ("PROMPTREC_LLM__TEMPERATURE", "nan", "finite number"),
    ("PROMPTREC_LLM__TIMEOUT_S", "-1", "greater than 0"),
    ("PROMPTREC_LLM__BASE_URL", "localhost:8080", "http:// or https:// URL"),
    ("PROMPTREC_STORE__URL", "http://127.0.0.1:99999", "invalid port"),
    ("PROMPTREC_STORE__URL", "ftp://x", "http:// or https:// URL"),
    ("PROMPTREC_FUSION__PARAMS", '{"nope": {}}', "params are for the single scorers: ease"),
    ("PROMPTREC_FUSION__CANDIDATE_DEPTH", "0", "greater than or equal to 1"),
    ("PROMPTREC_RERANK__DEPTH", "-3", "greater than or equal to 1"),
    ("PROMPTREC_RERANK__LLM_WEIGHT", "1.5", "less than or equal to 1"),
    ("PROMPTREC_SEED", "x", "valid integer"),
    ("PROMPTREC_DATASET", "  ", "name a dataset"),
])
def test_bad_values_name_the_variable(monkeypatch, variable, value, expected):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as err:
        Settings()
    assert variable in str(err.value) and expected in str(err.value)


def test_a_state_dir_that_is_a_file(tmp_path, monkeypatch):
    afile = tmp_path / "afile"
    afile.write_text("x")
    monkeypatch.setenv("PROMPTREC_STATE_DIR", str(afile))
    with pytest.raises(ConfigError, match=r"PROMPTREC_STATE_DIR .*is a file, not a folder"):
        Settings()
    with pytest.raises(ConfigError, match=r"data_dir.*inside .*afile, which is a file"):
        Settings(state_dir=tmp_path, data_dir=afile / "sub")


def test_every_problem_is_listed_once(monkeypatch):
    monkeypatch.setenv("PROMPTREC_SEED", "x")
    monkeypatch.setenv("PROMPTREC_RERANK__DEPTH", "0")
    message = str(pytest.raises(ConfigError, Settings).value)
    assert message.count("PROMPTREC_SEED") == 1 and message.count("PROMPTREC_RERANK__DEPTH") == 1


def test_a_section_built_alone_is_a_config_error_too():
    with pytest.raises(ConfigError, match="unknown fusion source 'x'"):
        FusionSettings(weights={"x": 1.0})
    with pytest.raises(ConfigError, match="fusion.weights"):
        Settings(fusion=FusionSettings(weights={"ease": 1.0}).model_dump() | {"weights": {"ease": -2.0}})


def test_config_error_is_still_a_value_error():
    assert issubclass(ConfigError, ValueError)


@pytest.mark.parametrize(("params", "expected"), [
    ({"bogus": 1}, "bogus: unknown setting; known: lambda_"),
    ({"lambda_": -5}, "lambda_ = -5: Input should be greater than 0"),
])
def test_bad_scorer_hyperparameters_are_a_config_error(params, expected):
    from promptrec.retrieval import build_scorers

    fusion = FusionSettings(weights={"ease": 1.0}, params={"ease": params})
    with pytest.raises(ConfigError) as err:
        build_scorers(fusion)
    assert str(err.value).startswith("invalid setting PROMPTREC_FUSION__PARAMS (ease): ") and expected in str(err.value)
