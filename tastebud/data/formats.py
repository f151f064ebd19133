"""What the loaders read: kinds of rows and file formats. Plain constants, apart from the
loaders (which import pyarrow), so that command-line help can name them without paying for
pyarrow at start-up."""

from __future__ import annotations

from typing import Literal

Kind = Literal["events", "items", "users"]
KINDS: tuple[Kind, ...] = ("events", "items", "users")
FORMATS = ("csv", "tsv", "jsonl", "parquet")
