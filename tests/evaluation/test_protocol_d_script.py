"""eval/protocol_d.py's command line: a model for --features is named as the other scripts name models."""

from promptrec.testing import load_eval_script


def test_an_unknown_features_model_is_a_one_line_error_before_any_work(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTREC_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("PROMPTREC_DATA_DIR", str(tmp_path / "no-data"))  # reached only if the name were accepted
    script = load_eval_script("protocol_d")
    assert script.main(["--features", "bogus-model", "--no-cold-users"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("protocol_d.py: --features bogus-model: no such model file")
    assert "PROMPTREC_LLM__MODEL" not in err  # the flag names the model, not the product's setting
