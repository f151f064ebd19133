"""fetch_dataset against a local HTTP server serving tiny fake archives: no internet needed."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import pytest

from tastebud.data import fetch
from tastebud.data.fetch import DATASETS, MANIFEST_NAME, FetchError, fetch_dataset

ML_100K_ARCHIVE = "ml-100k.zip"


@dataclass
class Route:
    """What the fake server answers for one path."""

    body: bytes = b""
    status: int = 200
    content_length: int | None = None  # None: the body's real length
    delay_seconds: float = 0.0


@dataclass
class FakeServer:
    """A local stand-in for files.grouplens.org; counts the requests it serves."""

    mirror: str
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def serve(self, archive_name: str, body: bytes, **route_options: object) -> None:
        self.routes[f"/files/{archive_name}"] = Route(body=body, **route_options)  # type: ignore[arg-type]


class _JoiningServer(ThreadingHTTPServer):
    """Handler threads are joined by server_close, so none outlives its test."""

    daemon_threads = False
    block_on_close = True


@pytest.fixture
def server() -> Iterator[FakeServer]:
    state = FakeServer(mirror="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append(self.path)
            route = state.routes.get(self.path, Route(status=404, body=b"not found"))
            if route.delay_seconds:
                state.release.wait(route.delay_seconds)
            length = len(route.body) if route.content_length is None else route.content_length
            try:
                self.send_response(route.status)
                self.send_header("Content-Length", str(length))
                self.end_headers()
                self.wfile.write(route.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (the timeout test); nothing to report

        def log_message(self, format: str, *args: object) -> None:
            """Keep test output clean."""

    http_server = _JoiningServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=http_server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    host, port = http_server.server_address[:2]
    state.mirror = f"http://{host}:{port}/files"
    try:
        yield state
    finally:
        state.release.set()
        http_server.shutdown()
        http_server.server_close()
        thread.join(timeout=10)


def make_zip(members: dict[str, bytes | str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def ml_100k_zip(marker: str = "1\t1\t5\t881250949\n") -> bytes:
    """The ml-100k layout (everything under ml-100k/) with a few fake lines."""
    return make_zip(
        {
            "ml-100k/u.data": marker,
            "ml-100k/u.item": "1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0\n",
            "ml-100k/u.user": "1|24|M|technician|85711\n",
            "ml-100k/README": "fake",
        }
    )


def archive_name(dataset: str) -> str:
    return PurePosixPath(urlsplit(DATASETS[dataset].url).path).name


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def assert_nothing_left(cache_dir: Path) -> None:
    """A failed fetch leaves neither a dataset folder nor temporary files."""
    leftovers = list(cache_dir.iterdir()) if cache_dir.exists() else []
    assert leftovers == []


def test_fetch_puts_files_in_cache_and_writes_manifest(
    server: FakeServer, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = ml_100k_zip()
    server.serve(ML_100K_ARCHIVE, body)
    monkeypatch.setattr(fetch, "DOWNLOAD_CHUNK_BYTES", 64)
    calls: list[tuple[int, int | None]] = []

    folder = fetch_dataset(
        "ml-100k", cache_dir, mirror=server.mirror + "/", progress=lambda *c: calls.append(c)
    )

    assert folder == cache_dir / "ml-100k"
    assert (folder / "u.data").read_text() == "1\t1\t5\t881250949\n"
    assert (folder / "u.item").is_file()
    assert server.requests == [f"/files/{ML_100K_ARCHIVE}"]
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    assert manifest["url"] == f"{server.mirror}/{ML_100K_ARCHIVE}"
    assert manifest["sha256"] == hashlib.sha256(body).hexdigest()
    assert manifest["fetched_at"]
    assert set(manifest["files"]) == {"u.data", "u.item", "u.user", "README"}
    done = [bytes_done for bytes_done, _ in calls]
    assert len(calls) > 1
    assert done == sorted(set(done))
    assert done[-1] == len(body)
    assert {total for _, total in calls} == {len(body)}
    assert sorted(path.name for path in cache_dir.iterdir()) == ["ml-100k"]


@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_every_dataset_is_normalized_to_a_flat_folder(
    dataset: str, server: FakeServer, cache_dir: Path
) -> None:
    spec = DATASETS[dataset]
    prefix = "" if dataset == "lastfm-2k" else f"{dataset}/"
    server.serve(
        archive_name(dataset),
        make_zip({f"{prefix}{name}": f"fake {name}" for name in spec.required_files}),
    )

    folder = fetch_dataset(dataset, cache_dir, mirror=server.mirror)

    for name in spec.required_files:
        assert (folder / name).read_text() == f"fake {name}"


def test_deeper_nesting_is_flattened_too(server: FakeServer, cache_dir: Path) -> None:
    files = {f"outer/inner/{name}": "x" for name in DATASETS["ml-1m"].required_files}
    files["__MACOSX/outer/inner/._ratings.dat"] = "resource fork"
    server.serve(archive_name("ml-1m"), make_zip(files))

    folder = fetch_dataset("ml-1m", cache_dir, mirror=server.mirror)

    assert sorted(path.name for path in folder.iterdir()) == sorted(
        [*DATASETS["ml-1m"].required_files, MANIFEST_NAME]
    )


def test_second_fetch_uses_the_cache(server: FakeServer, cache_dir: Path) -> None:
    server.serve(ML_100K_ARCHIVE, ml_100k_zip())
    first = fetch_dataset("ml-100k", cache_dir, mirror=server.mirror)

    second = fetch_dataset("ml-100k", cache_dir, mirror=server.mirror)

    assert second == first
    assert len(server.requests) == 1


def test_force_downloads_again_and_replaces_the_copy(server: FakeServer, cache_dir: Path) -> None:
    server.serve(ML_100K_ARCHIVE, ml_100k_zip("old\n"))
    fetch_dataset("ml-100k", cache_dir, mirror=server.mirror)
    server.serve(ML_100K_ARCHIVE, ml_100k_zip("new\n"))

    folder = fetch_dataset("ml-100k", cache_dir, mirror=server.mirror, force=True)

    assert len(server.requests) == 2
    assert (folder / "u.data").read_text() == "new\n"
    assert sorted(path.name for path in cache_dir.iterdir()) == ["ml-100k"]


def test_copy_without_manifest_is_fetched_again(server: FakeServer, cache_dir: Path) -> None:
    partial = cache_dir / "ml-100k"
    partial.mkdir(parents=True)
    (partial / "u.data").write_text("half\n")
    server.serve(ML_100K_ARCHIVE, ml_100k_zip())

    folder = fetch_dataset("ml-100k", cache_dir, mirror=server.mirror)

    assert len(server.requests) == 1
    assert (folder / "u.item").is_file()
    assert (folder / MANIFEST_NAME).is_file()


def test_http_error_names_status_and_url(server: FakeServer, cache_dir: Path) -> None:
    with pytest.raises(FetchError, match=r"HTTP 404") as caught:
        fetch_dataset("ml-100k", cache_dir, mirror=server.mirror)

    assert f"{server.mirror}/{ML_100K_ARCHIVE}" in str(caught.value)
    assert_nothing_left(cache_dir)


def test_failed_forced_fetch_keeps_the_previous_copy(server: FakeServer, cache_dir: Path) -> None:
    server.serve(ML_100K_ARCHIVE, ml_100k_zip("good\n"))
    folder = fetch_dataset("ml-100k", cache_dir, mirror=server.mirror)
    server.serve(ML_100K_ARCHIVE, b"<html>oops</html>")

    with pytest.raises(FetchError, match="zip"):
        fetch_dataset("ml-100k", cache_dir, mirror=server.mirror, force=True)

    assert (folder / "u.data").read_text() == "good\n"
    assert (folder / MANIFEST_NAME).is_file()
    assert sorted(path.name for path in cache_dir.iterdir()) == ["ml-100k"]


def test_non_zip_body_is_rejected(server: FakeServer, cache_dir: Path) -> None:
    server.serve(ML_100K_ARCHIVE, b"<html>Service Unavailable</html>")

    with pytest.raises(FetchError, match="did not return a zip archive"):
        fetch_dataset("ml-100k", cache_dir, mirror=server.mirror)

    assert_nothing_left(cache_dir)


def test_missing_required_file_is_named(server: FakeServer, cache_dir: Path) -> None:
    server.serve(ML_100K_ARCHIVE, make_zip({"ml-100k/u.data": "1\t1\t5\t0\n"}))

    with pytest.raises(FetchError, match=r"u\.item") as caught:
        fetch_dataset("ml-100k", cache_dir, mirror=server.mirror)

    assert "u.data" not in str(caught.value)
    assert_nothing_left(cache_dir)


def test_empty_zip_reports_every_required_file(server: FakeServer, cache_dir: Path) -> None:
    server.serve(ML_100K_ARCHIVE, make_zip({}))

    with pytest.raises(FetchError, match=r"u\.data, u\.item, u\.user"):
        fetch_dataset("ml-100k", cache_dir, mirror=server.mirror)

    assert_nothing_left(cache_dir)


@pytest.mark.parametrize("evil_name", ["../evil", "ml-100k/../../../evil", "/tmp/evil"])
def test_path_traversal_member_is_refused(
    evil_name: str, server: FakeServer, tmp_path: Path
) -> None:
    cache_dir = tmp_path / "a" / "b" / "cache"
    members: dict[str, bytes | str] = {
        name: "x" for name in ("ml-100k/u.data", "ml-100k/u.item", "ml-100k/u.user")
    }
    members[evil_name] = "pwned"
    server.serve(ML_100K_ARCHIVE, make_zip(members))

    with pytest.raises(FetchError, match="outside"):
        fetch_dataset("ml-100k", cache_dir, mirror=server.mirror)

    assert list(tmp_path.rglob("evil")) == []
    assert_nothing_left(cache_dir)


def test_checksum_mismatch_names_both_digests(
    server: FakeServer, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = ml_100k_zip()
    expected = "0" * 64
    monkeypatch.setitem(DATASETS, "ml-100k", replace(DATASETS["ml-100k"], sha256=expected))
    server.serve(ML_100K_ARCHIVE, body)

    with pytest.raises(FetchError, match="checksum mismatch") as caught:
        fetch_dataset("ml-100k", cache_dir, mirror=server.mirror)

    assert expected in str(caught.value)
    assert hashlib.sha256(body).hexdigest() in str(caught.value)
    assert_nothing_left(cache_dir)


def test_matching_checksum_is_accepted(
    server: FakeServer, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = ml_100k_zip()
    digest = hashlib.sha256(body).hexdigest()
    monkeypatch.setitem(DATASETS, "ml-100k", replace(DATASETS["ml-100k"], sha256=digest))
    server.serve(ML_100K_ARCHIVE, body)

    folder = fetch_dataset("ml-100k", cache_dir, mirror=server.mirror)

    assert json.loads((folder / MANIFEST_NAME).read_text())["sha256"] == digest


def test_truncated_download_is_rejected(server: FakeServer, cache_dir: Path) -> None:
    body = ml_100k_zip()
    server.serve(ML_100K_ARCHIVE, body, content_length=len(body) + 1000)

    with pytest.raises(FetchError, match="cut short"):
        fetch_dataset("ml-100k", cache_dir, mirror=server.mirror)

    assert_nothing_left(cache_dir)


def test_slow_server_times_out(server: FakeServer, cache_dir: Path) -> None:
    server.serve(ML_100K_ARCHIVE, ml_100k_zip(), delay_seconds=5.0)

    with pytest.raises(FetchError, match="timed out"):
        fetch_dataset("ml-100k", cache_dir, mirror=server.mirror, timeout=0.2)

    assert_nothing_left(cache_dir)


def test_unreachable_host_is_a_network_error(cache_dir: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]

    with pytest.raises(FetchError, match="could not reach"):
        fetch_dataset("ml-100k", cache_dir, mirror=f"http://127.0.0.1:{free_port}/files")

    assert_nothing_left(cache_dir)


def test_file_mirror_works_offline(tmp_path: Path, cache_dir: Path) -> None:
    mirror_dir = tmp_path / "mirror"
    mirror_dir.mkdir()
    (mirror_dir / ML_100K_ARCHIVE).write_bytes(ml_100k_zip())

    folder = fetch_dataset("ml-100k", cache_dir, mirror=mirror_dir.as_uri())

    assert (folder / "u.data").is_file()


def test_file_mirror_without_the_archive_is_a_clear_error(tmp_path: Path, cache_dir: Path) -> None:
    with pytest.raises(FetchError, match=r"could not read .*ml-100k\.zip: No such file"):
        fetch_dataset("ml-100k", cache_dir, mirror=(tmp_path / "empty").as_uri())

    assert_nothing_left(cache_dir)


def test_unknown_dataset_lists_known_names(cache_dir: Path) -> None:
    with pytest.raises(FetchError, match="unknown dataset") as caught:
        fetch_dataset("ml-100", cache_dir)

    message = str(caught.value)
    assert "did you mean 'ml-100k'" in message
    assert all(name in message for name in DATASETS)
    assert not cache_dir.exists()


def test_upstream_urls_point_at_grouplens() -> None:
    for name, spec in DATASETS.items():
        assert spec.name == name
        assert spec.url.startswith("https://files.grouplens.org/datasets/")
        assert spec.url.endswith(".zip")
        assert spec.required_files
