"""The dataset an evaluation runs on: loaded like the product, named by its content, state kept apart."""


from promptrec.evaluation.source import dataset_digest, eval_state_dir, load_source
from promptrec.settings import Settings
from promptrec.state import DatasetState
from promptrec.testing import tiny_dataset, write_dataset_folder


def test_a_folder_is_named_by_its_content_and_its_state_is_not_in_it(tmp_path):
    folder = tmp_path / "my data"
    write_dataset_folder(tiny_dataset(), folder)
    settings = Settings(state_dir=tmp_path / "state", dataset=str(folder), download=False)
    source = load_source(settings)
    assert source.dataset.name == "my data" and len(source.sha256) == 64
    assert source.sha256 == dataset_digest(tiny_dataset())  # the content, not the file it came from
    assert eval_state_dir(settings, source) == tmp_path / "state" / "eval" / f"my_data-{source.sha256[:12]}"
    product_state = DatasetState.for_dataset(settings.state_dir, source.dataset).root
    assert product_state.name.endswith(source.sha256[:16])  # one content hash names both
    for state in (eval_state_dir(settings, source), product_state):
        assert state.is_relative_to(tmp_path / "state") and not state.is_relative_to(folder)

    frame = source.dataset.interactions.frame
    frame.loc[frame.index[0], "timestamp"] += 1  # one changed timestamp is another dataset
    (folder / "interactions.csv").write_text(frame.to_csv(index=False))
    assert load_source(settings).sha256 != source.sha256


def test_a_named_dataset_is_keyed_by_name_and_content(tmp_path):
    state = DatasetState.for_dataset(tmp_path, tiny_dataset())
    assert state.root.parent == tmp_path / "derived" and state.root.name.startswith("tiny-")
