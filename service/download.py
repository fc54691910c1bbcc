"""Fetch, verify and extract the Pascal VOC2012 archive (``segserve download``).

Small stages, each undone or left resumable when it fails:

- fetch: stream the archive into ``DIR/<archive>.part``; an interrupted transfer
  resumes with an HTTP ``Range`` request, retried with exponential backoff;
- verify: the SHA-1 of the complete file; a mismatch moves it aside to
  ``<archive>.rejected`` and nothing is extracted;
- extract: every member must pass the ``tarfile`` "data" filter (no absolute
  paths, nothing outside the target, no links out of it) before anything is
  written; the archive is unpacked into a staging folder beside the target,
  checked for the VOC layout and only then renamed into place;
- done-marker: a file inside the extracted tree records the archive's SHA-1, so
  a second call returns at once without touching the network.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path, PurePosixPath
from typing import Any, Final

import tenacity
from tqdm import tqdm

from service.errors import DownloadError
from service.voc import IMAGE_DIR, LABEL_DIR, SPLIT_DIR, VOC_SHA1, VOC_SUBDIR, VOC_URL

logger = logging.getLogger(__name__)

MARKER_NAME: Final = ".download-complete"
"""File inside the extracted tree that holds the SHA-1 of the archive it came from."""

_LAYOUT: Final = (IMAGE_DIR, LABEL_DIR, SPLIT_DIR)
_TIMEOUT_SECONDS: Final = 60.0
_BACKOFF_SECONDS = 1.0  # first wait; doubles per failed attempt up to _BACKOFF_MAX_SECONDS
_BACKOFF_MAX_SECONDS: Final = 60.0
_TRANSIENT_STATUS: Final = frozenset({408, 425, 429, 500, 502, 503, 504})
# What a retry may cure: refused/reset/cut connections, timeouts, malformed responses.
_TRANSIENT: Final = (
    ConnectionError,
    TimeoutError,
    http.client.HTTPException,
    urllib.error.URLError,
)
_CONTENT_RANGE: Final = re.compile(r"bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)", re.IGNORECASE)


def download_voc(
    dest: Path,
    *,
    url: str = VOC_URL,
    sha1: str = VOC_SHA1,
    progress: bool = True,
    retries: int = 5,
    chunk_size: int = 1 << 20,
) -> Path:
    """Download, verify and extract VOC2012 below ``dest``; return ``dest/VOCdevkit/VOC2012``.

    The archive is kept as ``dest/<archive name>``; an archive already there is
    verified and used without downloading. Raises :class:`DownloadError` when the
    archive cannot be fetched within ``retries`` retries (the partial file stays
    for the next call to resume), fails the SHA-1 check, holds a member that
    would land outside the target, or lacks the VOC layout.
    """
    if retries < 0 or chunk_size < 1:
        raise ValueError("retries must be >= 0 and chunk_size >= 1")
    sha1 = sha1.lower()
    target = dest / VOC_SUBDIR
    if _is_complete(target, sha1):
        return target
    if target.exists() or target.is_symlink():
        raise DownloadError(
            f"{target} exists but was not written by a completed download of this archive; "
            "remove it or choose another directory"
        )
    archive = dest / _archive_name(url)
    dest.mkdir(parents=True, exist_ok=True)
    if not archive.exists():
        part = archive.with_name(archive.name + ".part")
        _fetch_with_retries(url, part, retries=retries, progress=progress, chunk_size=chunk_size)
        part.replace(archive)
    _verify(archive, sha1, url=url, chunk_size=chunk_size)
    _extract(archive, target, sha1)
    return target


def _archive_name(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise DownloadError(f"{url}: only http and https URLs are supported")
    name = PurePosixPath(urllib.parse.unquote(parts.path)).name
    if not name or name in (".", ".."):
        raise DownloadError(f"{url}: the URL does not end in a file name")
    return name


def _is_complete(target: Path, sha1: str) -> bool:
    try:
        recorded = (target / MARKER_NAME).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return False
    return recorded == sha1 and all((target / sub).is_dir() for sub in _LAYOUT)


# --- fetch ---------------------------------------------------------------------------------


def _fetch_with_retries(
    url: str, part: Path, *, retries: int, progress: bool, chunk_size: int
) -> None:
    """Run :func:`_fetch` until the part file is complete, resuming after each failure."""
    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(retries + 1),
        wait=tenacity.wait_exponential(multiplier=_BACKOFF_SECONDS, max=_BACKOFF_MAX_SECONDS),
        retry=tenacity.retry_if_exception_type(_TRANSIENT),
        before_sleep=tenacity.before_sleep_log(logger, logging.WARNING),
        reraise=True,
    )
    try:
        retrying(_fetch, url, part, progress=progress, chunk_size=chunk_size)
    except _TRANSIENT as err:
        raise DownloadError(
            f"could not download {url} in {retries + 1} attempts ({err}); "
            f"the partial file {part} is kept and the next run resumes it"
        ) from err


def _fetch(url: str, part: Path, *, progress: bool, chunk_size: int) -> None:
    """One attempt: append the rest of ``url`` to ``part``, or rewrite it from byte 0 when
    the server sends the whole file. Raises a transient error when the transfer stops short."""
    offset = part.stat().st_size if part.exists() else 0
    response = _open(url, part, offset)
    if response is None:
        return
    with response:
        start, total = _body_range(response, offset)
        if start not in (0, offset):
            part.unlink(missing_ok=True)
            raise ConnectionError(f"server resumed at byte {start}, not {offset}; restarting")
        if offset and not start:
            logger.info("%s: the server sent the whole file; restarting from byte 0", url)
        _stream(response, part, start=start, total=total, progress=progress, chunk_size=chunk_size)
    size = part.stat().st_size
    if total is not None and size < total:
        raise ConnectionError(f"connection closed after {size} of {total} bytes")


def _open(url: str, part: Path, offset: int) -> Any:
    """The response for the bytes from ``offset`` on, or None when the part is already whole."""
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        return urllib.request.urlopen(request, timeout=_TIMEOUT_SECONDS)
    except urllib.error.HTTPError as err:
        with err:
            _check_http_error(err, url, part, offset)
        return None


def _check_http_error(err: urllib.error.HTTPError, url: str, part: Path, offset: int) -> None:
    """Return only for a 416 that says ``part`` already holds the whole file; else raise."""
    if err.code == 416:
        _, total = _parse_content_range(err.headers.get("Content-Range"))
        if total == offset:
            return
        part.unlink(missing_ok=True)
        raise ConnectionError(f"server cannot resume at byte {offset}; restarting")
    if err.code in _TRANSIENT_STATUS:
        raise ConnectionError(f"HTTP {err.code} {err.reason}")
    raise DownloadError(f"{url}: HTTP {err.code} {err.reason}")


def _body_range(response: Any, offset: int) -> tuple[int, int | None]:
    """First byte of the body within the file, and the file's size when the server says it."""
    if response.status == 206:
        start, total = _parse_content_range(response.headers.get("Content-Range"))
        if start is None:
            raise http.client.HTTPException("206 response without a valid Content-Range")
        return start, total
    if response.status == 200:  # a full body: the server ignored or never got a Range
        length = response.headers.get("Content-Length")
        return 0, int(length) if length is not None and length.isdigit() else None
    raise http.client.HTTPException(f"unexpected HTTP status {response.status}")


def _parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    """``bytes START-END/TOTAL`` or ``bytes */TOTAL`` as (START, TOTAL); None where absent."""
    match = _CONTENT_RANGE.fullmatch(value.strip()) if value else None
    if match is None:
        return None, None
    start, total = match.groups()
    return (
        int(start) if start is not None else None,
        int(total) if total is not None and total != "*" else None,
    )


def _stream(
    response: Any, part: Path, *, start: int, total: int | None, progress: bool, chunk_size: int
) -> None:
    with (
        part.open("ab" if start else "wb") as out,
        tqdm(
            total=total,
            initial=start,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=part.name.removesuffix(".part"),
            disable=not progress,
        ) as bar,
    ):
        while chunk := response.read(chunk_size):
            out.write(chunk)
            bar.update(len(chunk))


# --- verify --------------------------------------------------------------------------------


def _verify(archive: Path, sha1: str, *, url: str, chunk_size: int) -> None:
    """Check the archive's SHA-1; on a mismatch move it aside and raise."""
    digest = hashlib.sha1(usedforsecurity=False)
    with archive.open("rb") as file:
        while chunk := file.read(chunk_size):
            digest.update(chunk)
    got = digest.hexdigest()
    if got != sha1:
        rejected = archive.with_name(archive.name + ".rejected")
        archive.replace(rejected)
        raise DownloadError(
            f"SHA-1 mismatch for {archive.name} from {url}: expected {sha1}, got {got}; "
            f"the file was moved to {rejected} and nothing was extracted"
        )


# --- extract -------------------------------------------------------------------------------


def _extract(archive: Path, target: Path, sha1: str) -> None:
    """Unpack into a staging folder beside the target; rename into place only if all is well."""
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=archive.parent))
    try:
        _unpack(archive, staging)
        tree = staging / VOC_SUBDIR
        missing = [sub for sub in _LAYOUT if not (tree / sub).is_dir()]
        if missing:
            raise DownloadError(
                f"{archive.name} does not hold the VOC layout: missing "
                f"{', '.join(f'{VOC_SUBDIR}/{sub}' for sub in missing)}; nothing was extracted"
            )
        (tree / MARKER_NAME).write_text(sha1 + "\n", encoding="ascii")
        target.parent.mkdir(parents=True, exist_ok=True)
        tree.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _unpack(archive: Path, staging: Path) -> None:
    """Refuse the archive if any member fails the checks, else extract it all into ``staging``."""
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for member in members:
                _check_member(member, staging)
            # Filtered again at extraction time, against the links extracted so far.
            tar.extractall(staging, members=members, filter="data")
    except tarfile.FilterError as err:
        raise _refused(err.tarinfo.name, str(err)) from err
    except tarfile.TarError as err:
        raise DownloadError(f"{archive.name} is not a readable tar archive: {err}") from err


def _check_member(member: tarfile.TarInfo, root: Path) -> None:
    # The data filter would strip a leading "/" and extract the member; refuse it instead.
    if member.name.startswith(("/", os.sep)) or os.path.isabs(member.name):
        raise _refused(member.name, "absolute path, outside the target")
    tarfile.data_filter(member, os.fspath(root))


def _refused(name: str, reason: str) -> DownloadError:
    return DownloadError(f"archive member {name!r} refused: {reason}; nothing was extracted")
