"""eval/classic_baselines.py end to end on a small dataset folder (items + interactions), loaded like the product."""

import json

import pandas as pd

from promptrec.collab.testing import synthetic_interactions
from promptrec.testing import load_eval_script



def test_script_prints_both_stages_and_writes_json(tmp_path, capsys):
    frame = synthetic_interactions(n_users=50, n_items=30, length=12)
    folder = tmp_path / "ring"
    folder.mkdir()
    frame.to_csv(folder / "interactions.csv", index=False)
    items = sorted(set(frame["item_id"]), key=int)
    pd.DataFrame({"item_id": items, "title": [f"Item {i}" for i in items]}).to_csv(folder / "items.csv", index=False)
    out = tmp_path / "table.json"
    assert (
        load_eval_script("classic_baselines").main(["--dataset", str(folder), "--tune", "--folds", "2", "--out", str(out)])
        == 0
    )
    printed = capsys.readouterr().out
    assert "Protocol A: 50 users, 30 items, 600 interactions" in printed
    assert "| TunedBlend | test |" in printed and "| Pop | valid |" in printed
    payload = json.loads(out.read_text())
    assert payload["dataset"]["name"] == "ring" and len(payload["dataset"]["sha256"]) == 64
    assert f"ring (sha256 {payload['dataset']['sha256'][:12]})" in printed
    models = {(row["model"], row["stage"]) for row in payload["rows"]}
    assert ("ClassicBlend", "test") in models and ("EASE(200)", "valid") in models
    assert payload["selection"]["normalization"] in ("zscore", "minmax")
