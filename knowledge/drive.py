"""Google Drive v3: list the PDFs of one folder and download them, never on the event loop.

Built on google-api-python-client with its bundled discovery document (no discovery request):
`build("drive", "v3", credentials=..., client_options={"api_endpoint": ...},
cache_discovery=False, static_discovery=True)`.

- Every library call runs in this client's own thread pool. httplib2 objects are not thread-safe,
  so each worker thread has its own `AuthorizedHttp` (sharing the credentials), passed to each
  request; the service object is only used to build requests.
- 429, 5xx, Drive's 403 rate-limit reasons and transport errors are retried with tenacity:
  exponential backoff with jitter, or the server's `Retry-After` (capped). The library's own
  `num_retries` stays 0, so there is one retry policy, tested in one place.
- `DRIVE_API_ENDPOINT` is Drive's base URL: a bare origin (`https://host:port`) gets the
  service path `/drive/v3/` appended, a URL with a path is used as it is.
"""

from __future__ import annotations

import asyncio
import io
import json
import random
import re
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import google_auth_httplib2  # type: ignore[import-untyped]
import httplib2  # type: ignore[import-untyped]
from google.auth import exceptions as auth_exceptions
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaIoBaseDownload
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from utils.logging import get_logger
from utils.retry_after import parse_retry_after

log = get_logger(__name__)

T = TypeVar("T")

PDF_MIME_TYPE = "application/pdf"
FOLDER_MIME_TYPE = "application/vnd.google-apps.folder"
FILE_FIELDS = "id, name, md5Checksum, modifiedTime, size, mimeType"
LIST_FIELDS = f"nextPageToken, incompleteSearch, files({FILE_FIELDS})"
_ID = re.compile(r"[A-Za-z0-9_-]{1,200}")
_RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})


@dataclass(frozen=True)
class DriveFile:
    """One PDF as listed: what change detection compares (md5, modified time)."""

    id: str
    name: str
    md5: str | None
    modified_time: datetime | None
    size: int | None
    mime_type: str = PDF_MIME_TYPE


class DriveError(Exception):
    """Drive refused or failed (after retries); `status` is the HTTP status when there was one.

    The message is built here (status and Drive's reason word), never from a response body.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class FileTooLarge(DriveError):
    """The file is larger than the configured cap (checked before and while downloading)."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    retry_after_cap: float = 60.0


def drive_base_url(api_endpoint: str | None) -> str | None:
    """The base URL for googleapiclient from DRIVE_API_ENDPOINT (see the module docstring)."""
    if not api_endpoint:
        return None
    parts = urlsplit(api_endpoint)
    if parts.path in ("", "/"):
        return f"{parts.scheme}://{parts.netloc}/drive/v3/"
    return api_endpoint if api_endpoint.endswith("/") else api_endpoint + "/"


@dataclass(frozen=True)
class Listing:
    """The folder's PDFs; `complete` False when Drive said its results may be incomplete
    (`incompleteSearch`): what is missing from such a listing may still be there."""

    files: list[DriveFile]
    complete: bool = True


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def _drive_file(item: dict[str, Any]) -> DriveFile:
    size = item.get("size")
    return DriveFile(id=str(item["id"]), name=str(item.get("name") or item["id"]),
                     md5=item.get("md5Checksum"), modified_time=_parse_time(
                         item.get("modifiedTime")),
                     size=int(size) if size is not None else None,
                     mime_type=str(item.get("mimeType") or ""))


def _status(error: BaseException) -> int | None:
    if isinstance(error, HttpError):
        return int(error.resp.status)
    return None


def _reasons(error: HttpError) -> list[str]:
    try:
        body = json.loads(error.content.decode("utf-8"))
        return [str(item.get("reason")) for item in body["error"].get("errors", [])]
    except (ValueError, KeyError, AttributeError, TypeError):
        return []


def _reason(error: HttpError) -> str | None:
    """Drive's first error reason (`notFound`, `rateLimitExceeded`...), when it is a word."""
    reasons = _reasons(error)
    return reasons[0] if reasons and _ID.fullmatch(reasons[0]) else None


def _rate_limit_reason(error: HttpError) -> bool:
    return bool(set(_reasons(error)) & _RATE_LIMIT_REASONS)


def is_retryable(error: BaseException) -> bool:
    """429, 5xx, Drive's 403 rate limits, transport errors and retryable token refreshes."""
    if isinstance(error, FileTooLarge):
        return False
    if isinstance(error, HttpError):
        status = int(error.resp.status)
        return status == 429 or status >= 500 or (status == 403 and _rate_limit_reason(error))
    if isinstance(error, auth_exceptions.RefreshError):
        return bool(getattr(error, "retryable", False))
    return isinstance(error, OSError | httplib2.HttpLib2Error | auth_exceptions.TransportError)


def retry_after_seconds(error: BaseException | None) -> float | None:
    """The `Retry-After` of an HttpError, in seconds (number or HTTP date)."""
    if not isinstance(error, HttpError):
        return None
    return parse_retry_after(error.resp.get("retry-after"))


class _CappedBuffer(io.BytesIO):
    def __init__(self, limit: int) -> None:
        super().__init__()
        self._limit = limit

    def write(self, data: Any) -> int:
        if self.tell() + len(data) > self._limit:
            raise FileTooLarge(f"larger than {self._limit} bytes")
        return super().write(data)


class DriveClient:
    """Lists and downloads the PDFs of `folder_id`. Close it with `await close()`.

    `sleep` is what waits between retries (tests pass a fast one); `workers` bounds concurrent
    Drive requests.
    """

    def __init__(self, credentials: Any, *, folder_id: str, max_bytes: int,
                 api_endpoint: str | None = None, timeout: float = 60.0, workers: int = 4,
                 retry: RetryPolicy | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 chunk_size: int = 4 * 1024 * 1024) -> None:
        if not _ID.fullmatch(folder_id):
            raise ValueError("DRIVE_FOLDER_ID must be a Drive id (letters, digits, - and _)")
        self.folder_id = folder_id
        self.max_bytes = max_bytes
        self._credentials = credentials
        self._base_url = drive_base_url(api_endpoint)
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._chunk_size = chunk_size
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="drive")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._service: Any = None
        self._https: list[google_auth_httplib2.AuthorizedHttp] = []
        self.retries = 0  # retried requests, for tests and the sync report

    # Everything below `_` runs in a worker thread.

    def _http(self) -> google_auth_httplib2.AuthorizedHttp:
        http = getattr(self._local, "http", None)
        if http is None:
            http = google_auth_httplib2.AuthorizedHttp(
                self._credentials, http=httplib2.Http(timeout=self._timeout))
            self._local.http = http
            with self._lock:
                self._https.append(http)
        return http

    def _files(self) -> Any:
        with self._lock:
            if self._service is None:
                options = {"api_endpoint": self._base_url} if self._base_url else None
                self._service = build("drive", "v3", credentials=self._credentials,
                                      client_options=options, cache_discovery=False,
                                      static_discovery=True)
            return self._service.files()

    def _folder_drive_id(self) -> str | None:
        folder = self._files().get(fileId=self.folder_id, fields="id, mimeType, driveId",
                                   supportsAllDrives=True).execute(http=self._http())
        if folder.get("mimeType") != FOLDER_MIME_TYPE:
            raise DriveError("DRIVE_FOLDER_ID is not a folder")
        drive_id = folder.get("driveId")
        return str(drive_id) if drive_id else None

    def _list_page(self, drive_id: str | None, page_token: str | None) -> dict[str, Any]:
        query = (f"'{self.folder_id}' in parents and mimeType = '{PDF_MIME_TYPE}' "
                 "and trashed = false")
        scope = {"corpora": "drive", "driveId": drive_id} if drive_id else {"corpora": "user"}
        request = self._files().list(
            q=query, fields=LIST_FIELDS, pageSize=1000, pageToken=page_token, spaces="drive",
            supportsAllDrives=True, includeItemsFromAllDrives=True, **scope)
        page: dict[str, Any] = request.execute(http=self._http())
        return page

    def _download(self, file_id: str) -> bytes:
        request = self._files().get_media(fileId=file_id, supportsAllDrives=True)
        request.http = self._http()
        buffer = _CappedBuffer(self.max_bytes)
        downloader = MediaIoBaseDownload(buffer, request,
                                         chunksize=min(self._chunk_size, self.max_bytes + 1))
        done = False
        while not done:
            _, done = downloader.next_chunk(num_retries=0)
        return buffer.getvalue()

    # The async side.

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        hinted = retry_after_seconds(error)
        if hinted is not None:
            return min(hinted, self._retry.retry_after_cap)
        ceiling = min(self._retry.max_delay,
                      self._retry.base_delay * 2 ** (state.attempt_number - 1))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security

    def _before_sleep(self, state: RetryCallState) -> None:
        self.retries += 1
        error = state.outcome.exception() if state.outcome else None
        log.info("drive request retried", attempt=state.attempt_number,
                 status=_status(error) if error else None,
                 error=type(error).__name__ if error else None,
                 wait_seconds=round(state.upcoming_sleep, 3))

    async def _call(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._retry.attempts), wait=self._wait,
            retry=retry_if_exception(is_retryable), sleep=self._sleep,
            before_sleep=self._before_sleep, reraise=True)
        try:
            async for attempt in retrying:
                with attempt:
                    return await loop.run_in_executor(self._executor, function, *args)
        except HttpError as exc:
            status = int(exc.resp.status)
            reason = _reason(exc)
            raise DriveError(f"Drive answered {status}" + (f" ({reason})" if reason else ""),
                             status) from None
        except (OSError, httplib2.HttpLib2Error, auth_exceptions.TransportError) as exc:
            raise DriveError(f"Drive unreachable ({type(exc).__name__})") from None
        except auth_exceptions.RefreshError as exc:
            raise DriveError(f"Drive token refused ({type(exc).__name__})") from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def list_pdfs(self) -> Listing:
        """Every PDF directly in the folder that is not trashed (all pages of results)."""
        drive_id = await self._call(self._folder_drive_id)
        files: list[DriveFile] = []
        token: str | None = None
        pages = 0
        complete = True
        while True:
            page = await self._call(self._list_page, drive_id, token)
            pages += 1
            if page.get("incompleteSearch"):
                complete = False
            files.extend(_drive_file(item) for item in page.get("files", [])
                         if item.get("mimeType") == PDF_MIME_TYPE)
            token = page.get("nextPageToken")
            if not token:
                break
        if not complete:
            log.warning("drive listing incomplete", folder=self.folder_id)
        log.info("drive listed", files=len(files), pages=pages)
        return Listing(files, complete)

    async def download(self, file: DriveFile) -> bytes:
        """The file's bytes; FileTooLarge when over `max_bytes` (before or during download)."""
        if file.size is not None and file.size > self.max_bytes:
            raise FileTooLarge(f"{file.size} bytes is more than {self.max_bytes}")
        return await self._call(self._download, file.id)

    async def close(self) -> None:
        def shutdown() -> None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            with self._lock:
                https, self._https = self._https, []
                service, self._service = self._service, None
            for http in https:
                http.close()
            if service is not None:
                service.close()

        await asyncio.to_thread(shutdown)
