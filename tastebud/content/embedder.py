"""The fitted content embedder: items (and their audio features) in, 128-d vectors out.

It owns every fitted piece (category vocabulary, creator popularity, text encoder,
assembler) and saves them with the artifact, so an incremental run embeds a new item with
exactly the transform its neighbours were embedded with.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from tastebud.content.assembler import DEFAULT_WEIGHTS, EMBEDDING_DIM, Assembler
from tastebud.content.audio import AUDIO_FIELDS
from tastebud.content.metadata import (
    DEFAULT_MAX_CATEGORIES,
    PRECOMPUTED_ATTRIBUTES,
    CategoryEncoder,
    MetadataEncoder,
    attribute_block,
)
from tastebud.content.text import (
    DEFAULT_TEXT_DIM,
    EncoderKind,
    TextEncoder,
    item_text,
    load_text_encoder,
    make_text_encoder,
)
from tastebud.schemas import Item

SCHEMA_VERSION = "emb_v1.0.0"
# The key is circular (B is next to C): it enters the audio block as its position on the
# circle of fifths (sin, cos), so neighbouring keys are close.
AUDIO_BLOCK_FIELDS = (
    *(name for name in AUDIO_FIELDS if name != "key"),
    "key_fifths_sin",
    "key_fifths_cos",
)


@dataclass
class EmbedOptions:
    """How embeddings are built; part of the artifact's schema."""

    dim: int = EMBEDDING_DIM
    text_dim: int = DEFAULT_TEXT_DIM
    text_encoder: EncoderKind = "auto"
    max_categories: int = DEFAULT_MAX_CATEGORIES
    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))


def audio_block(features: Sequence[Mapping[str, float] | None]) -> np.ndarray:
    """(n x len(AUDIO_BLOCK_FIELDS)), NaN rows for items without audio features."""
    block = np.full((len(features), len(AUDIO_BLOCK_FIELDS)), np.nan, dtype=np.float64)
    for row, values in enumerate(features):
        if not values:
            continue
        for column, name in enumerate(AUDIO_BLOCK_FIELDS[:-2]):
            block[row, column] = values.get(name, np.nan)
        angle = 2 * math.pi * ((int(values.get("key", 0)) * 7) % 12) / 12
        block[row, -2:] = (math.sin(angle), math.cos(angle))
    return block


class ContentEmbedder:
    """Fitted encoders + assembler. ``fit`` on a catalog, then ``embed`` any items."""

    def __init__(self, options: EmbedOptions | None = None) -> None:
        self.options = options or EmbedOptions()

    def fit(
        self,
        items: Sequence[Item],
        audio: Mapping[str, Mapping[str, float]],
        item_events: Mapping[str, float],
        now: datetime,
    ) -> ContentEmbedder:
        options = self.options
        self.fit_id_ = f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"
        self.categories_ = CategoryEncoder(options.max_categories).fit(
            item.categories for item in items
        )
        self.metadata_ = MetadataEncoder().fit(items, item_events, now)
        self.text_: TextEncoder = make_text_encoder(options.text_encoder, options.text_dim)
        self.text_.fit([item_text(item) for item in items])
        self.assembler_ = Assembler(options.dim, options.weights).fit(self.blocks(items, audio))
        return self

    def blocks(
        self, items: Sequence[Item], audio: Mapping[str, Mapping[str, float]]
    ) -> dict[str, np.ndarray]:
        """Raw (unstandardized) feature blocks, NaN where an item lacks the input."""
        attributes, _ = attribute_block(items)
        return {
            "audio": audio_block([audio.get(item.item_id) for item in items]),
            "attributes": attributes,
            "categories": self.categories_.transform([item.categories for item in items]),
            "metadata": self.metadata_.transform(items),
            "text": self.text_.transform([item_text(item) for item in items]),
        }

    def embed(
        self, items: Sequence[Item], audio: Mapping[str, Mapping[str, float]]
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Vectors (n x dim) and, per block, which items had any of its inputs."""
        blocks = self.blocks(items, audio)
        vectors = self.assembler_.transform(blocks)
        present = {name: np.isfinite(values).any(axis=1) for name, values in blocks.items()}
        # An item with nothing but the age it was given has no content to embed.
        content = np.zeros(len(items), dtype=bool)
        for name in ("audio", "attributes", "categories", "text"):
            content |= present[name]
        content |= np.isfinite(blocks["metadata"][:, 0])  # a creator is content
        vectors[~content] = 0.0
        present["any"] = content
        return vectors, present

    def fields(self) -> list[str]:
        """The input fields, block by block (the schema's ``fields``)."""
        text = [f"text_{self.text_.kind}_{i}" for i in range(self.text_.dim)]
        return [
            *AUDIO_BLOCK_FIELDS,
            *(f"attr_{name}" for name in PRECOMPUTED_ATTRIBUTES),
            *self.categories_.fields,
            *MetadataEncoder.FIELDS,
            *text,
        ]

    def save(self, folder: Path) -> list[str]:
        folder.mkdir(parents=True, exist_ok=True)
        options = self.options
        meta = {
            "schema_version": SCHEMA_VERSION,
            "fit_id": self.fit_id_,
            "options": {
                "dim": options.dim,
                "text_dim": options.text_dim,
                "text_encoder": options.text_encoder,
                "max_categories": options.max_categories,
                "weights": options.weights,
            },
            "categories": self.categories_.state(),
            "metadata": self.metadata_.state(),
        }
        (folder / "embedder.json").write_text(json.dumps(meta, sort_keys=True))
        return ["embedder.json", *self.text_.save(folder), *self.assembler_.save(folder)]

    @classmethod
    def load(cls, folder: Path) -> ContentEmbedder:
        meta = json.loads((folder / "embedder.json").read_text())
        embedder = cls(EmbedOptions(**meta["options"]))
        embedder.fit_id_ = meta["fit_id"]
        embedder.categories_ = CategoryEncoder.from_state(meta["categories"])
        embedder.metadata_ = MetadataEncoder.from_state(meta["metadata"])
        embedder.text_ = load_text_encoder(folder)
        embedder.assembler_ = Assembler.load(folder)
        return embedder
