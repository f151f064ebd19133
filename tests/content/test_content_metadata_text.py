"""Metadata and text features: capped category vocabulary with "other", creator popularity
and age frozen at fit time, NaN attributes reported, TF-IDF + SVD saved without pickle, and
the optional sentence-transformer encoder falling back to TF-IDF when it is not installed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from content_samples import catalog

from tastebud.content import text as text_module
from tastebud.content.metadata import (
    CategoryEncoder,
    MetadataEncoder,
    attribute_block,
    attribute_values,
)
from tastebud.content.text import (
    EncoderUnavailable,
    TfidfSvdEncoder,
    item_text,
    load_text_encoder,
    make_text_encoder,
)
from tastebud.schemas import Item

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def test_categories_capped_with_other() -> None:
    rows = [["Rock", "pop"], ["rock"], ["jazz"], ["rock", "Jazz"], ["polka"], []]
    encoder = CategoryEncoder(max_categories=2).fit(rows)
    assert encoder.vocabulary_ == ["rock", "jazz"]
    assert encoder.fields == ["category_rock", "category_jazz", "category_other"]
    block = encoder.transform([*rows, ["unseen"]])
    assert block[0].tolist() == [1, 0, 1]
    assert block[4].tolist() == [0, 0, 1]
    assert np.isnan(block[5]).all()  # no categories: missing, not "none of these"
    assert block[6].tolist() == [0, 0, 1]
    again = CategoryEncoder.from_state(encoder.state())
    assert np.array_equal(again.transform(rows[:5]), block[:5])


def test_creator_popularity_and_age() -> None:
    items = [
        Item(item_id="a", creator="Band", created_at="2024-12-31T00:00:00Z"),
        Item(item_id="b", creator="band "),
        Item(item_id="c", creator="Solo"),
        Item(item_id="d"),
    ]
    encoder = MetadataEncoder().fit(items, {"a": 10, "b": 5, "c": 0}, NOW)
    block = encoder.transform(items)
    assert block[0, 0] == pytest.approx(np.log1p(15))  # creator names are normalized
    assert block[2, 0] == 0.0
    assert np.isnan(block[3]).all()
    assert block[0, 1] == pytest.approx(np.log1p(1.0))
    newcomer = Item(item_id="e", creator="Unknown", created_at="2026-01-01T00:00:00Z")
    restored = MetadataEncoder.from_state(encoder.state())
    assert restored.transform([newcomer]).tolist() == [[0.0, 0.0]]  # future dates clip to 0


def test_nan_and_non_numeric_attributes_are_reported() -> None:
    attributes = {"energy": float("nan"), "tempo": "fast", "danceability": 0.7, "loudness": -5}
    with pytest.raises(ValueError, match=r"attributes\.energy is not a finite number"):
        Item(item_id="x", attributes=attributes)  # the catalog refuses NaN at the door
    # The encoder does not rely on that rule: an item built without validation is reported.
    item = Item.model_construct(item_id="x", attributes=attributes)
    values, bad = attribute_values(item)
    assert values == {"danceability": 0.7, "loudness": -5.0}
    assert sorted(bad) == ["energy", "tempo"]
    block, problems = attribute_block([item, Item(item_id="y")])
    assert problems == {"x": ["energy", "tempo"]}
    assert np.isnan(block[1]).all()


def test_item_text_joins_title_description_and_tags() -> None:
    item = Item(
        item_id="x", title="Blue Train", attributes={"description": "hard bop", "tags": ["sax"]}
    )
    assert item_text(item) == "Blue Train hard bop sax"
    assert item_text(Item(item_id="y", attributes={"tags": "a|b,c"})) == "a b c"
    assert item_text(Item(item_id="z")) == ""


def test_tfidf_svd_round_trip_and_topics(tmp_path: Path) -> None:
    texts = [item_text(item) for item in catalog(60)] + [""]
    encoder = TfidfSvdEncoder(dim=16).fit(texts)
    vectors = encoder.transform(texts)
    assert vectors.shape == (61, 16)
    assert np.isnan(vectors[-1]).all() and np.isfinite(vectors[:-1]).all()
    unit = vectors[:-1] / np.linalg.norm(vectors[:-1], axis=1, keepdims=True)
    same = unit[0] @ unit[2]  # both rock
    other = unit[0] @ unit[1]  # rock vs jazz
    assert same > other + 0.3
    encoder.save(tmp_path)
    restored = load_text_encoder(tmp_path)
    assert np.allclose(restored.transform(texts[:-1]), vectors[:-1], atol=1e-6)
    assert not list(tmp_path.glob("*.pkl"))


def test_tfidf_pads_tiny_corpora() -> None:
    encoder = TfidfSvdEncoder(dim=64).fit(["one song", "two songs", "three"])
    assert encoder.transform(["one song"]).shape == (1, 64)
    empty = TfidfSvdEncoder(dim=8).fit(["", ""])
    assert empty.transform(["anything"]).tolist() == [[0.0] * 8]


def test_encoder_falls_back_to_tfidf_without_sentence_transformers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(text_module, "minilm_available", lambda: False)
    assert isinstance(make_text_encoder("auto"), TfidfSvdEncoder)
    assert isinstance(make_text_encoder("tfidf"), TfidfSvdEncoder)
    with pytest.raises(EncoderUnavailable, match="pip install sentence-transformers"):
        make_text_encoder("minilm")


def test_minilm_availability_is_checked_without_importing_torch() -> None:
    # In this environment sentence-transformers is not installed: auto must give TF-IDF.
    if text_module.minilm_available():
        pytest.skip("sentence-transformers is installed here")
    assert make_text_encoder("auto").kind == "tfidf"


def test_minilm_path_with_a_stand_in_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The wiring of the optional encoder, with a stand-in for the bundled model (torch is
    not installed here): ``auto`` picks it, vectors are 384-d, empty texts are missing,
    and a saved encoder loads back as MiniLM."""
    import sys
    import types
    from importlib.machinery import ModuleSpec

    class StandIn:
        def encode(self, texts: list[str], **options: object) -> np.ndarray:
            assert options.get("normalize_embeddings") is True
            return np.ones((len(texts), 384), dtype=np.float32) / np.sqrt(384)

    for name in ("sentence_transformers", text_module.MINILM_PACKAGE):
        module = types.ModuleType(name)
        module.__spec__ = ModuleSpec(name, None)
        monkeypatch.setitem(sys.modules, name, module)
    sys.modules[text_module.MINILM_PACKAGE].load_model = lambda device=None: StandIn()  # type: ignore[attr-defined]
    encoder = make_text_encoder("auto")
    assert encoder.kind == "minilm" and encoder.dim == 384
    vectors = encoder.transform(["a song", ""])
    assert vectors.shape == (2, 384) and np.isnan(vectors[1]).all()
    assert np.linalg.norm(vectors[0]) == pytest.approx(1.0)
    encoder.save(tmp_path)
    assert load_text_encoder(tmp_path).kind == "minilm"
