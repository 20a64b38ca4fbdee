from promptrec.knowledge import FeatureRecord, FeatureStore
from promptrec.knowledge.degenerate import DEGENERATE
from promptrec.knowledge.stores import migrate_legacy_features, product_feature_store
from promptrec.llm.identity import configured_model_id
from promptrec.settings import Settings
from promptrec.state import DatasetState
from promptrec.types import ItemFeatures

GOOD = ItemFeatures(themes=["space", "friendship"], mood="upbeat", audience="families", description="A trip.")
JUNK = ItemFeatures(themes=["Documentary"] * 3, mood="calm", audience="all", description="A film.")


def record(item_id, model_id, features=GOOD, error=None):
    return FeatureRecord(item_id=item_id, features=features, error=error, model_id=model_id, template_hash="t")


def test_old_shared_file_is_sorted_into_per_model_stores_once(tmp_path, tiny):
    state = DatasetState(tmp_path, "demo-0123456789abcdef")
    old = FeatureStore(state.features)
    for r in (record("1", "small@aa"), record("2", "small@aa", JUNK), record("1", "quality@bb"),
              record("3", "quality@bb", None, "model call failed")):
        old.append(r)
    assert migrate_legacy_features(state, tiny.catalog) == 4
    small, quality = FeatureStore(state.features_for("small@aa")), FeatureStore(state.features_for("quality@bb"))
    assert small.get("1") == GOOD and small.get("2") is None
    assert small.record("2").error == DEGENERATE + "repeated themes"  # checked on the way: never embedded
    assert quality.get("1") == GOOD and quality.record("3").error == "model call failed"
    assert not state.features.exists() and state.features.with_name("features.jsonl.migrated").exists()
    assert migrate_legacy_features(state, tiny.catalog) == 0


def test_migration_never_replaces_a_good_record(tmp_path):
    state = DatasetState(tmp_path, "demo-0123456789abcdef")
    newer = ItemFeatures(themes=["heists"], mood="tense", audience="adults", description="A crew plans a job.")
    FeatureStore(state.features_for("small@aa")).append(record("1", "small@aa", newer))
    FeatureStore(state.features).append(record("1", "small@aa"))
    product = product_feature_store(state, "small@aa", style="open")  # the old file held open-style features
    assert product.path == state.features_for("small@aa") and product.get("1") == newer
    closed = product_feature_store(state, "small@aa")  # the product's default style: its own, empty store
    assert closed.path == state.features_for("small@aa", "closed") and closed.style == "closed" and len(closed) == 0
    assert product_feature_store(state, None).path == state.features  # no model: the old place, now empty


def test_configured_model_id_matches_the_backends_naming(tmp_path):
    settings = Settings(state_dir=tmp_path, llm={"backend": "openai", "model": "smol", "base_url": "http://127.0.0.1:9/v1"})
    assert configured_model_id(settings) == "openai-compatible:smol@http://127.0.0.1:9/v1"
    assert configured_model_id(Settings(state_dir=tmp_path, llm={"model": str(tmp_path / "missing.gguf")})) is None


def test_parts_fingerprint_equals_the_assembled_files(tmp_path):
    import os

    from promptrec.llm.identity import parts_fingerprint
    from promptrec.llm.resolve import fingerprint

    blob = os.urandom((1 << 22) * 2 + 12345)
    cuts = [0, 1000, (1 << 22) + 7, len(blob) - 50, len(blob)]
    parts = []
    for i, (a, b) in enumerate(zip(cuts, cuts[1:])):
        parts.append(tmp_path / f"part{i}.bin")
        parts[-1].write_bytes(blob[a:b])
    (tmp_path / "whole.gguf").write_bytes(blob)
    assert parts_fingerprint(parts) == fingerprint(tmp_path / "whole.gguf")
