"""Content embeddings: audio, metadata and text features of catalog items assembled into
versioned, fixed-width vectors (see docs/content.md), a content-to-CF mapping for cold items
and item-item content similarity for ranking.

Layer (docs/architecture.md): may import ``models``, ``data``, ``registry``, ``stores`` and
the core; never ``training``, ``signals`` or anything above (``features``, ``ranking``,
``jobs``, ``api``).
"""

from tastebud.content.artifact import (
    EmbeddingArtifact,
    embedding_registry,
    latest_artifact,
    load_artifact,
    register_artifact,
)
from tastebud.content.embedder import SCHEMA_VERSION, ContentEmbedder, EmbedOptions
from tastebud.content.pipeline import BuildResult, build

__all__ = [
    "SCHEMA_VERSION",
    "BuildResult",
    "ContentEmbedder",
    "EmbedOptions",
    "EmbeddingArtifact",
    "build",
    "embedding_registry",
    "latest_artifact",
    "load_artifact",
    "register_artifact",
]
