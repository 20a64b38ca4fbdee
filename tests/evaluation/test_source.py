"""The dataset an evaluation runs on: loaded like the product, named by its content, state kept apart."""

from pathlib import Path

from promptrec.evaluation.source import dataset_digest, eval_state_dir, load_source
from promptrec.settings import Settings
from promptrec.testing import tiny_dataset, write_dataset_folder


def test_a_folder_is_named_by_its_content_and_its_state_is_not_in_it(tmp_path):
    folder = tmp_path / "my data"
    write_dataset_folder(tiny_dataset(), folder)
    settings = Settings(state_dir=tmp_path / "state", dataset=str(folder), download=False)
    source = load_source(settings)
    assert source.dataset.name == "my data" and len(source.sha256) == 64
    assert source.sha256 == dataset_digest(tiny_dataset())  # the content, not the file it came from
    assert eval_state_dir(settings, source) == tmp_path / "state" / "eval" / f"my_data-{source.sha256[:12]}"
    for state in (eval_state_dir(settings, source), settings.dataset_state_dir):
        assert state.is_relative_to(tmp_path / "state") and not state.is_relative_to(folder)

    frame = source.dataset.interactions.frame
    frame.loc[frame.index[0], "timestamp"] += 1  # one changed timestamp is another dataset
    (folder / "interactions.csv").write_text(frame.to_csv(index=False))
    assert load_source(settings).sha256 != source.sha256


def test_a_named_dataset_keeps_its_state_folder(tmp_path):
    assert Settings(state_dir=tmp_path, dataset="ml-latest-small").dataset_state_dir == Path(tmp_path) / "ml-latest-small"
