"""Download public recommendation datasets into a local cache (``tastebud datasets fetch``).

pooch does the transfer: the download (requests, streamed, with a per-operation timeout),
the sha256 check against a known hash, and unpacking (its ``Unzip`` processor, here refusing
entries that point outside the folder). What is ours is what pooch does not do: a fetch is
all-or-nothing: the archive is downloaded and unpacked inside a hidden temporary folder in
the cache and only renamed to ``cache_dir/<name>`` once every check has passed (required
files found at whatever nesting the archive has), so an interrupted or failed fetch never
leaves a half-populated dataset folder behind. A manifest (``.tastebud-fetch.json``)
records where the copy came from and its checksum; a copy without one is treated as
unverified and fetched again. Every failure becomes a ``FetchError`` whose message is meant
for the user (a CLI message, not a traceback).
"""

from __future__ import annotations

import contextlib
import difflib
import json
import logging
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import pooch
import requests

from tastebud.data.public_datasets import DATASETS as DATASETS
from tastebud.data.public_datasets import DatasetSpec

MANIFEST_NAME = ".tastebud-fetch.json"
DOWNLOAD_CHUNK_BYTES = 64 * 1024
USER_AGENT = "tastebud-datasets-fetch/0.1 (+https://github.com/tastebud)"
IGNORED_ARCHIVE_FOLDERS = frozenset({"__MACOSX"})
EXTRACTED = "extracted"  # the folder the archive is unpacked into, inside the work folder

ProgressCallback = Callable[[int, int | None], None]


class FetchError(RuntimeError):
    """A fetch failed; the message is meant to be shown to the user as is."""


def fetch_dataset(
    name: str,
    cache_dir: Path,
    *,
    mirror: str | None = None,
    force: bool = False,
    progress: ProgressCallback | None = None,
    timeout: float = 60.0,
) -> Path:
    """Make sure a verified copy of dataset ``name`` is in ``cache_dir / name``; return that path.

    A copy already there with its manifest and required files is reused unless ``force``.
    ``mirror`` is a base URL (``http(s)://`` or ``file://``) that serves the archive under its
    upstream file name, for offline installs and tests. ``progress(bytes_done, total)`` is
    called as the download goes (``bytes_done`` only grows); ``total`` is None when the
    server does not say. ``timeout`` bounds each network operation, not the whole download.
    Raises FetchError.
    """
    spec = _spec_for(name)
    cache_dir = Path(cache_dir)
    target = cache_dir / name
    if not force and _is_verified(target, spec):
        return target

    url = _archive_url(spec, mirror)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix=f".{name}.fetch-", dir=cache_dir))
    except OSError as error:
        raise FetchError(f"cannot create the dataset cache in {cache_dir}: {error}") from error
    try:
        archive = workdir / _archive_file_name(spec.url)
        _retrieve(spec, url, archive, progress=progress, timeout=timeout)
        digest = spec.sha256.lower() if spec.sha256 else pooch.file_hash(str(archive))
        size = archive.stat().st_size
        dataset_root = _find_dataset_root(workdir / EXTRACTED, spec, url)
        try:
            _write_manifest(dataset_root, url=url, sha256=digest, size_bytes=size)
        except OSError as error:
            raise FetchError(f"cannot write the manifest in {cache_dir}: {error}") from error
        _move_into_place(dataset_root, target, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return target


def _spec_for(name: str) -> DatasetSpec:
    """Look a dataset up, suggesting the closest known name for a typo."""
    spec = DATASETS.get(name)
    if spec is not None:
        return spec
    known = sorted(DATASETS)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise FetchError(f"unknown dataset {name!r}{hint}; known datasets: {', '.join(known)}")


def _archive_file_name(url: str) -> str:
    return PurePosixPath(urlsplit(url).path).name


def _archive_url(spec: DatasetSpec, mirror: str | None) -> str:
    """The upstream URL, or the same file name under the mirror's base URL."""
    if not mirror:
        return spec.url
    return f"{mirror.rstrip('/')}/{_archive_file_name(spec.url)}"


def _read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _is_verified(folder: Path, spec: DatasetSpec) -> bool:
    """True when a previous fetch completed here and its files are still present.

    Files are not re-hashed (the archive is gone after extraction); a checksum recorded
    under a different expected sha256 means the spec changed, so the copy is stale.
    """
    manifest = _read_manifest(folder)
    if manifest is None:
        return False
    if spec.sha256 is not None and str(manifest.get("sha256", "")).lower() != spec.sha256.lower():
        return False
    return all((folder / relative).is_file() for relative in spec.required_files)


def _retrieve(
    spec: DatasetSpec,
    url: str,
    archive: Path,
    *,
    progress: ProgressCallback | None,
    timeout: float,
) -> None:
    """Download ``url`` to ``archive`` with pooch (checked against ``spec.sha256`` when
    known) and unpack it into ``archive.parent / EXTRACTED``; every failure is a FetchError."""
    downloader: Callable[..., None]
    if urlsplit(url).scheme == "file":
        downloader = _FileCopy(progress)
    else:
        downloader = pooch.HTTPDownloader(
            progressbar=_Progress(progress) if progress is not None else False,
            chunk_size=DOWNLOAD_CHUNK_BYTES,
            timeout=timeout,
            headers={"User-Agent": USER_AGENT},
        )
    try:
        with _quiet_pooch():
            pooch.retrieve(
                url,
                known_hash=f"sha256:{spec.sha256.lower()}" if spec.sha256 else None,
                fname=archive.name,
                path=archive.parent,
                processor=_SafeUnzip(url),
                downloader=downloader,
            )
    except requests.exceptions.RequestException as error:
        if error.response is not None:  # pooch streams and leaves a failed response open
            error.response.close()
        raise _network_error(error, url, timeout) from error
    except zipfile.BadZipFile as error:
        raise FetchError(
            f"{url} did not return a zip archive ({archive.stat().st_size} bytes; "
            f"starts with {_first_bytes(archive)!r}); check the URL or mirror"
        ) from error
    except ValueError as error:  # pooch's hash check: the only ValueError it raises here
        raise FetchError(f"checksum mismatch for {url}: {error}") from error
    except OSError as error:
        raise FetchError(f"cannot download or unpack {url} in {archive.parent}: {error}") from error


def _network_error(
    error: requests.exceptions.RequestException, url: str, timeout: float
) -> FetchError:
    """A one-line message for what went wrong on the wire (requests' own are nested reprs)."""
    cause = _root_cause(error)
    if isinstance(error, requests.exceptions.HTTPError) and error.response is not None:
        response = error.response
        return FetchError(f"HTTP {response.status_code} {response.reason} fetching {url}")
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return FetchError(f"timed out after {timeout:g}s connecting to {url}")
    if isinstance(error, requests.exceptions.Timeout) or isinstance(cause, TimeoutError):
        return FetchError(f"timed out after {timeout:g}s downloading {url}")
    if isinstance(error, requests.exceptions.ChunkedEncodingError):
        return FetchError(f"download of {url} was cut short ({cause}); try again")
    if isinstance(error, requests.exceptions.ConnectionError):
        return FetchError(f"could not reach {url}: {cause}")
    if isinstance(error, ValueError):  # InvalidURL, MissingSchema, InvalidSchema
        return FetchError(f"invalid dataset URL {url!r}: {error}")
    return FetchError(f"network error fetching {url}: {cause}")


def _root_cause(error: BaseException) -> BaseException:
    """The innermost error under requests' and urllib3's wrappers."""
    seen = {id(error)}
    while True:
        reason = getattr(error, "reason", None)
        inner = next(
            (
                candidate
                for candidate in (error.__cause__, reason, error.__context__)
                if isinstance(candidate, BaseException) and id(candidate) not in seen
            ),
            None,
        )
        if inner is None:
            return error
        seen.add(id(inner))
        error = inner


@contextlib.contextmanager
def _quiet_pooch() -> Iterator[None]:
    """pooch logs each download at INFO on stderr; the CLI has its own progress bar."""
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


class _Progress:
    """pooch's progress-bar protocol (``total``, ``update``, ``reset``, ``close``) turned into
    ``progress(bytes_done, total)`` calls. pooch counts whole chunks and, at the end, resets
    and adds the total: bytes are capped at the total and only reported when they grow."""

    def __init__(self, callback: ProgressCallback) -> None:
        self.callback = callback
        self.total = 0  # set by pooch from Content-Length; 0 when the server does not say
        self.counted = 0
        self.reported = 0

    def update(self, step: int) -> None:
        self.counted += step
        done = min(self.counted, self.total) if self.total else self.counted
        if done > self.reported:
            self.reported = done
            self.callback(done, self.total or None)

    def reset(self) -> None:
        self.counted = 0

    def close(self) -> None:
        """Nothing to release."""


class _FileCopy:
    """A pooch downloader for ``file://`` mirrors (pooch knows only network protocols)."""

    def __init__(self, progress: ProgressCallback | None) -> None:
        self.progress = progress

    def __call__(self, url: str, output_file: str, _pooch: object) -> None:
        source = Path(url2pathname(urlsplit(url).path))
        try:
            shutil.copyfile(source, output_file)
        except OSError as error:
            raise FetchError(f"could not read {url}: {error.strerror or error}") from error
        if self.progress is not None:
            size = source.stat().st_size
            self.progress(size, size)


class _SafeUnzip(pooch.Unzip):
    """pooch's Unzip into ``EXTRACTED``, refusing entries that would land outside it (zip
    slip: zipfile would rewrite them silently; such an archive is not a dataset we know)."""

    def __init__(self, url: str) -> None:
        super().__init__(extract_dir=EXTRACTED)
        self.url = url

    def _extract_file(self, fname: str, extract_dir: str) -> None:
        with zipfile.ZipFile(fname) as zip_file:
            unsafe = [name for name in zip_file.namelist() if _is_unsafe_member(name)]
        if unsafe:
            raise FetchError(
                f"refusing to extract the archive from {self.url}: it has entries that point "
                f"outside its folder: {', '.join(unsafe[:5])}"
            )
        super()._extract_file(fname, extract_dir)


def _is_unsafe_member(member_name: str) -> bool:
    """True for names that would land outside the extraction folder (zip slip)."""
    normalized = member_name.replace("\\", "/")
    return (
        normalized.startswith("/")
        or bool(PureWindowsPath(member_name).drive)
        or ".." in normalized.split("/")
    )


def _first_bytes(path: Path, count: int = 16) -> bytes:
    try:
        with path.open("rb") as file:
            return file.read(count)
    except OSError:
        return b""


def _find_dataset_root(extracted: Path, spec: DatasetSpec, url: str) -> Path:
    """The shallowest folder with every required file, whatever the archive's nesting.

    When none has them all, the error lists what the most complete folder lacks.
    """
    candidates: list[tuple[int, int, str, list[str]]] = []
    for folder, subfolders, _ in os.walk(extracted):
        subfolders[:] = [name for name in subfolders if name not in IGNORED_ARCHIVE_FOLDERS]
        missing = [rel for rel in spec.required_files if not (Path(folder) / rel).is_file()]
        depth = len(Path(folder).relative_to(extracted).parts)
        candidates.append((len(missing), depth, folder, missing))
    _, _, best_folder, missing = min(candidates)
    if missing:
        raise FetchError(
            f"the archive from {url} lacks required file(s) for {spec.name!r}: {', '.join(missing)}"
        )
    return Path(best_folder)


def _write_manifest(dataset_root: Path, *, url: str, sha256: str, size_bytes: int) -> None:
    """Record the copy's origin, so a later fetch can trust it without downloading."""
    files = sorted(
        path.relative_to(dataset_root).as_posix()
        for path in dataset_root.rglob("*")
        if path.is_file()
    )
    manifest = {
        "url": url,
        "sha256": sha256,
        "size_bytes": size_bytes,
        "fetched_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": files,
    }
    (dataset_root / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")


def _move_into_place(dataset_root: Path, target: Path, workdir: Path) -> None:
    """Rename the finished folder to ``target``, swapping out any previous copy.

    The previous copy is moved into ``workdir`` (deleted with it) and restored if the final
    rename fails, so ``target`` is always either the old copy or the complete new one.
    """
    previous = workdir / "previous"
    had_previous = target.exists() or target.is_symlink()
    try:
        if had_previous:
            os.rename(target, previous)
        os.rename(dataset_root, target)
    except OSError as error:
        if had_previous and previous.exists() and not target.exists():
            os.rename(previous, target)
        raise FetchError(f"cannot move the dataset into {target}: {error}") from error
