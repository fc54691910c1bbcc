"""download_voc against a real local HTTP server serving a tiny VOC-layout tar."""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from PIL import Image

from service import download
from service.download import MARKER_NAME, download_voc
from service.errors import DownloadError
from tests.service.httpfixture import FileServer, Served

ARCHIVE = "VOCtrainval_11-May-2012.tar"


def _image_bytes(mode: str, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (5, 3), 1 if mode == "P" else (200, 10, 10)).save(buffer, fmt)
    return buffer.getvalue()


VOC_FILES: dict[str, bytes] = {
    "VOCdevkit/VOC2012/JPEGImages/a.jpg": _image_bytes("RGB", "JPEG"),
    "VOCdevkit/VOC2012/SegmentationClass/a.png": _image_bytes("P", "PNG"),
    "VOCdevkit/VOC2012/ImageSets/Segmentation/train.txt": b"a\n",
}


def _tar(files: dict[str, bytes], extra: Sequence[tarfile.TarInfo] = ()) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isreg() else None)
    return buffer.getvalue()


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(download, "_BACKOFF_SECONDS", 0.0)


@pytest.fixture
def body() -> bytes:
    return _tar(VOC_FILES)


@pytest.fixture
def server(body: bytes) -> Iterator[FileServer]:
    with FileServer(body=body) as running:
        yield running


def _download(
    server: FileServer,
    dest: Path,
    *,
    sha1: str | None = None,
    progress: bool = False,
    retries: int = 5,
) -> Path:
    return download_voc(
        dest,
        url=server.url(),
        sha1=sha1 or _sha1(server.body),
        progress=progress,
        retries=retries,
        chunk_size=1024,
    )


def _assert_extracted(root: Path) -> None:
    assert root.name == "VOC2012"
    for name, data in VOC_FILES.items():
        assert (root.parents[1] / name).read_bytes() == data
    assert (root / MARKER_NAME).is_file()


def test_clean_download_extracts_the_voc_layout(
    server: FileServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _download(server, tmp_path / "data", progress=True)
    assert root == tmp_path / "data" / "VOCdevkit" / "VOC2012"
    _assert_extracted(root)
    assert server.requests == [Served(range=None, status=200, body_bytes=len(server.body))]
    assert (tmp_path / "data" / ARCHIVE).read_bytes() == server.body
    assert {p.name for p in (tmp_path / "data").iterdir()} == {ARCHIVE, "VOCdevkit"}
    assert "100%" in capsys.readouterr().err


def test_cut_connection_resumes_with_a_range_request(server: FileServer, tmp_path: Path) -> None:
    cut = len(server.body) // 3
    server.cut_after, server.cuts = cut, 1
    _assert_extracted(_download(server, tmp_path))
    assert server.requests == [
        Served(range=None, status=200, body_bytes=cut),
        Served(range=f"bytes={cut}-", status=206, body_bytes=len(server.body) - cut),
    ]


def test_server_ignoring_range_restarts_from_zero(server: FileServer, tmp_path: Path) -> None:
    cut = len(server.body) // 2
    server.cut_after, server.cuts, server.ignore_range = cut, 1, True
    _assert_extracted(_download(server, tmp_path))
    assert server.requests[1] == Served(
        range=f"bytes={cut}-", status=200, body_bytes=len(server.body)
    )
    assert (tmp_path / ARCHIVE).read_bytes() == server.body


def test_complete_part_file_is_used_after_a_416(server: FileServer, tmp_path: Path) -> None:
    (tmp_path / f"{ARCHIVE}.part").write_bytes(server.body)
    _assert_extracted(_download(server, tmp_path))
    assert server.requests == [Served(range=f"bytes={len(server.body)}-", status=416, body_bytes=0)]


def test_oversized_part_file_is_restarted(server: FileServer, tmp_path: Path) -> None:
    (tmp_path / f"{ARCHIVE}.part").write_bytes(server.body + b"garbage")
    _assert_extracted(_download(server, tmp_path))
    assert [r.status for r in server.requests] == [416, 200]


def test_transient_status_is_retried(server: FileServer, tmp_path: Path) -> None:
    server.failures = 2
    _assert_extracted(_download(server, tmp_path))
    assert [r.status for r in server.requests] == [503, 503, 200]


def test_not_found_is_not_retried(server: FileServer, tmp_path: Path) -> None:
    server.failures, server.fail_status = 1, 404
    with pytest.raises(DownloadError, match="HTTP 404"):
        _download(server, tmp_path)
    assert server.count() == 1
    assert not (tmp_path / "VOCdevkit").exists()


def test_exhausted_retries_keep_the_part_for_the_next_run(
    server: FileServer, tmp_path: Path
) -> None:
    server.cut_after, server.cuts = 100, 3
    with pytest.raises(DownloadError, match=r"in 3 attempts.*next run resumes"):
        _download(server, tmp_path, retries=2)
    assert server.count() == 3
    assert (tmp_path / f"{ARCHIVE}.part").read_bytes() == server.body[:300]
    _assert_extracted(_download(server, tmp_path))
    assert server.requests[-1].range == "bytes=300-"


def test_wrong_checksum_is_rejected_and_not_extracted(server: FileServer, tmp_path: Path) -> None:
    wrong = "0" * 40
    message = rf"expected {wrong}, got {_sha1(server.body)}.*{ARCHIVE}\.rejected.*nothing was"
    with pytest.raises(DownloadError, match=message):
        _download(server, tmp_path, sha1=wrong)
    assert _tree(tmp_path) == {f"{ARCHIVE}.rejected"}
    assert (tmp_path / f"{ARCHIVE}.rejected").read_bytes() == server.body


def _symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


def _regular(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = 4
    return info


@pytest.mark.parametrize(
    ("member", "shown"),
    [
        (_regular("../evil"), "../evil"),
        (_regular("VOCdevkit/../../evil"), "VOCdevkit/../../evil"),
        (_regular("/tmp/segserve-absolute-evil"), "/tmp/segserve-absolute-evil"),
        (_symlink("VOCdevkit/VOC2012/up", "../../../evil"), "VOCdevkit/VOC2012/up"),
        (_symlink("VOCdevkit/VOC2012/abs", "/etc"), "VOCdevkit/VOC2012/abs"),
    ],
)
def test_member_escaping_the_target_refuses_the_archive(
    tmp_path: Path, member: tarfile.TarInfo, shown: str
) -> None:
    body = _tar(VOC_FILES, [member])  # after the good members: a naive extractor would write them
    dest = tmp_path / "data"
    with FileServer(body=body) as server, pytest.raises(DownloadError) as caught:
        _download(server, dest)
    assert repr(shown) in str(caught.value)
    assert "nothing was extracted" in str(caught.value)
    assert _tree(tmp_path) == {"data", f"data/{ARCHIVE}"}
    assert not Path("/tmp/segserve-absolute-evil").exists()


def test_archive_without_the_layout_is_refused(tmp_path: Path) -> None:
    files = {k: v for k, v in VOC_FILES.items() if "SegmentationClass" not in k}
    with FileServer(body=_tar(files)) as server, pytest.raises(DownloadError) as caught:
        _download(server, tmp_path)
    assert "VOCdevkit/VOC2012/SegmentationClass" in str(caught.value)
    assert _tree(tmp_path) == {ARCHIVE}


def test_second_call_makes_no_request(server: FileServer, tmp_path: Path) -> None:
    first = _download(server, tmp_path)
    assert server.count() == 1
    (tmp_path / ARCHIVE).unlink()  # not even the kept archive is needed
    assert _download(server, tmp_path) == first
    assert server.count() == 1


def test_existing_archive_is_used_without_a_request(server: FileServer, tmp_path: Path) -> None:
    (tmp_path / ARCHIVE).write_bytes(server.body)
    _assert_extracted(_download(server, tmp_path))
    assert server.count() == 0


def test_foreign_target_is_not_overwritten(server: FileServer, tmp_path: Path) -> None:
    (tmp_path / "VOCdevkit" / "VOC2012").mkdir(parents=True)
    with pytest.raises(DownloadError, match="not written by a completed download"):
        _download(server, tmp_path)
    assert server.count() == 0


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.org/a.tar", "only http and https"),
        ("http://127.0.0.1:1/", "does not end in a file name"),
    ],
)
def test_unsupported_url_is_refused_without_a_request(
    url: str, message: str, tmp_path: Path
) -> None:
    with pytest.raises(DownloadError, match=message):
        download_voc(tmp_path / "data", url=url, progress=False)
    assert _tree(tmp_path) == set()
