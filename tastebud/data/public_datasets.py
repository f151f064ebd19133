"""The public datasets ``tastebud datasets fetch`` knows: where each lives, its checksum,
and which files prove a copy complete. Plain data (no pooch, no network), so listing them
costs nothing; ``fetch`` does the downloading."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetSpec:
    """Where a public dataset lives and which files prove that a copy of it is complete.

    ``required_files`` are paths relative to the dataset folder; ``sha256`` is the expected
    checksum of the archive, or None when upstream publishes none we have verified.
    """

    name: str
    url: str
    required_files: tuple[str, ...]
    sha256: str | None = None
    description: str = ""


_MOVIELENS = "https://files.grouplens.org/datasets/movielens"
_MOVIELENS_CSV_FILES = ("ratings.csv", "movies.csv", "tags.csv", "links.csv")

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            name="ml-100k",
            url=f"{_MOVIELENS}/ml-100k.zip",
            required_files=("u.data", "u.item", "u.user"),
            description="MovieLens 100K: 100,000 ratings from 943 users on 1,682 movies (1998).",
        ),
        DatasetSpec(
            name="ml-1m",
            url=f"{_MOVIELENS}/ml-1m.zip",
            required_files=("ratings.dat", "movies.dat", "users.dat"),
            description="MovieLens 1M: 1 million ratings from 6,040 users on 3,900 movies (2003).",
        ),
        DatasetSpec(
            name="ml-latest-small",
            url=f"{_MOVIELENS}/ml-latest-small.zip",
            required_files=_MOVIELENS_CSV_FILES,
            description="MovieLens latest, small: 100,000 ratings and 3,600 tag applications.",
        ),
        DatasetSpec(
            name="ml-20m",
            url=f"{_MOVIELENS}/ml-20m.zip",
            required_files=_MOVIELENS_CSV_FILES,
            description="MovieLens 20M: 20 million ratings and 465,000 tag applications (2015).",
        ),
        DatasetSpec(
            name="ml-25m",
            url=f"{_MOVIELENS}/ml-25m.zip",
            required_files=_MOVIELENS_CSV_FILES,
            description="MovieLens 25M: 25 million ratings and 1 million tag applications (2019).",
        ),
        DatasetSpec(
            name="lastfm-2k",
            url="https://files.grouplens.org/datasets/hetrec2011/hetrec2011-lastfm-2k.zip",
            required_files=(
                "user_artists.dat",
                "artists.dat",
                "user_taggedartists.dat",
                "tags.dat",
            ),
            description="HetRec 2011 Last.fm: artist play counts and tags from 1,892 users.",
        ),
    )
}
