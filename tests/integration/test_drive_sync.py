"""Drive listing, downloads and the sync, with the real Google client libraries over sockets.

The stand-in (tests/support/google_standins.py) verifies the OAuth JWT assertion, the listing
query and the shared-drive flags; the database fixture runs each test on SQLite and PostgreSQL.
Nothing may leave 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.exc import DataError, OperationalError

from harness.google_standins import TOKEN_AUDIENCE, FakeClock, GoogleStandIn
from harness.pdf_factory import content_pdf, corrupt_pdf, encrypted_pdf, flate_bomb_pdf, make_pdf
from knowledge.credentials import DRIVE_SCOPE, drive_credentials
from knowledge.drive import DriveClient, DriveError, RetryPolicy
from knowledge.sync import DriveSync, ProgressThrottle, SyncAlreadyRunning
from store import knowledge as store
from store.database import Database
from tests.support.network_guard import NetworkGuard
from utils.config import Settings


@pytest.fixture
def google_page_size() -> int:
    return 2  # pagination is exercised


class Sleeps:
    """Records the waits between retries instead of sleeping them."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)


def drive_client(google: GoogleStandIn, sleeps: Sleeps | None = None,
                 max_bytes: int = 5_000_000) -> DriveClient:
    return DriveClient(drive_credentials(google.key_json(), boundary_lookup=False),
                       folder_id=google.folder_id, max_bytes=max_bytes,
                       api_endpoint=google.drive_endpoint, timeout=10,
                       retry=RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.02,
                                         retry_after_cap=30.0),
                       sleep=sleeps or Sleeps())


def drive_sync(google: GoogleStandIn, database: Database, sleeps: Sleeps | None = None,
               max_bytes: int = 5_000_000) -> DriveSync:
    async def factory() -> DriveClient:
        return drive_client(google, sleeps, max_bytes)

    return DriveSync(database, factory, interval=0)


def pdf_for(topic: str, pages: int = 2) -> bytes:
    return make_pdf([f"{topic} page {n}. The {topic} chapter {n} explains {topic} in depth."
                     for n in range(1, pages + 1)])


async def test_listing_pages_through_results_after_a_token_exchange(
        google: GoogleStandIn) -> None:
    ids = {google.add_pdf(f"doc{n}.pdf", pdf_for(f"topic{n}")) for n in range(7)}
    trashed = google.add_pdf("trashed.pdf", pdf_for("trash"))
    google.trash(trashed)
    google.add_pdf("elsewhere.pdf", pdf_for("elsewhere"), parent="other-folder")
    client = drive_client(google)
    try:
        files = (await client.list_pdfs()).files
    finally:
        await client.close()
    assert {file.id for file in files} == ids
    assert google.calls["list"] == 4  # pages of 2
    assert all(file.md5 and file.size and file.modified_time for file in files)
    # One token exchange at the key's token_uri, its JWT checked by the stand-in.
    assert google.calls["token"] == 1
    claims = google.token_claims[0]
    assert claims["aud"] == TOKEN_AUDIENCE
    assert claims["scope"] == DRIVE_SCOPE
    listing = [query for kind, _, query in google.requests if kind == "list"]
    assert all(query["pageSize"] == "1000" for query in listing)
    assert [query.get("pageToken") is None for query in listing] == [True, False, False, False]


async def test_shared_drive_folders_are_listed_in_their_drive(
        network_guard: NetworkGuard) -> None:
    google = GoogleStandIn(shared_drive_id="0AshareD")
    await google.start()
    try:
        google.add_pdf("shared.pdf", pdf_for("shared"))
        client = drive_client(google)
        try:
            assert [file.name for file in (await client.list_pdfs()).files] == ["shared.pdf"]
        finally:
            await client.close()
    finally:
        await google.stop()


async def test_download_in_ranges_and_size_cap(google: GoogleStandIn) -> None:
    data = make_pdf(["x " * 3000, "y " * 3000])
    file_id = google.add_pdf("big.pdf", data)
    client = drive_client(google, max_bytes=len(data))
    client._chunk_size = 1000  # several range requests
    try:
        [listed] = (await client.list_pdfs()).files
        assert await client.download(listed) == data
        assert google.calls["media"] == -(-len(data) // 1000)
        small = drive_client(google, max_bytes=len(data) - 1)
        try:
            with pytest.raises(DriveError, match="more than"):
                await small.download(listed)
            # A listing that lies about the size is caught while downloading.
            with pytest.raises(DriveError, match="larger than"):
                await small.download(type(listed)(file_id, "big.pdf", None, None, None))
        finally:
            await small.close()
    finally:
        await client.close()


async def test_429_and_500_are_retried_honouring_retry_after(google: GoogleStandIn) -> None:
    google.add_pdf("a.pdf", pdf_for("alpha"))
    google.fail_next("list", 429, retry_after="7")
    google.fail_next("media", 500, 503)
    google.fail_next("get", 403)  # a 403 with reason rateLimitExceeded: Drive's rate limit
    sleeps = Sleeps()
    client = drive_client(google, sleeps)
    try:
        [listed] = (await client.list_pdfs()).files
        assert (await client.download(listed)).startswith(b"%PDF-")
    finally:
        await client.close()
    assert client.retries == 4
    assert 7.0 in sleeps.waits  # Retry-After honoured
    assert all(wait <= 30.0 for wait in sleeps.waits)


async def test_retry_after_is_capped_and_errors_give_up(google: GoogleStandIn) -> None:
    google.fail_next("get", 500, 500, 500, 500, retry_after="3600")
    sleeps = Sleeps()
    client = drive_client(google, sleeps)
    try:
        with pytest.raises(DriveError, match=r"Drive answered 500 \(backendError\)") as caught:
            await client.list_pdfs()
    finally:
        await client.close()
    assert caught.value.status == 500
    assert sleeps.waits == [30.0, 30.0, 30.0]  # capped, 4 attempts in all


async def test_first_sync_indexes_and_resync_downloads_nothing(
        google: GoogleStandIn, database: Database) -> None:
    google.add_pdf("Gardening.pdf", make_pdf([
        "Tomatoes need full sun and deep watering.",
        "Compost feeds the soil.", "Prune the zucchini leaves in August."]))
    google.add_pdf("Astronomy.pdf", pdf_for("nebula", pages=3))
    google.add_pdf("Cooking.pdf", pdf_for("risotto"))
    google.add_pdf("Broken.pdf", corrupt_pdf())
    google.add_pdf("Locked.pdf", encrypted_pdf(["the password protected zeppelin"]))
    sync = drive_sync(google, database)
    progress: list[tuple[int, int]] = []

    first = await sync.run(lambda done, total: progress.append((done, total)))
    assert (first.status, first.files_total, first.downloaded, first.skipped, first.removed) \
        == ("done", 5, 5, 2, 0)
    assert sorted(reason.split(" ")[0] for _, reason in first.skipped_files) \
        == ["corrupt", "encrypted"]
    assert first.passages >= 8
    assert progress[0] == (0, 5)
    assert progress[-1] == (5, 5)
    assert len(progress) == 6

    hits, total = await store.search(database, "zucchini")
    assert total == 1
    assert (hits[0].document, hits[0].page) == ("Gardening.pdf", 3)
    assert (await store.search(database, "zeppelin"))[1] == 0

    downloads = sum(google.downloads.values())
    second = await sync.run()
    assert (second.downloaded, second.unchanged, second.skipped, second.removed) == (0, 3, 2, 0)
    assert sum(google.downloads.values()) == downloads

    row = await sync.status(second.sync_id)
    assert row is not None
    assert row.as_dict() | {"started_at": None, "finished_at": None, "duration_seconds": None} \
        == {"sync_id": second.sync_id, "status": "done", "trigger": "manual",
            "files_total": 5, "downloaded": 0, "skipped": 2, "removed": 0,
            "started_at": None, "finished_at": None, "duration_seconds": None, "error": None}
    states = await store.document_states(database)
    assert {state.name: state.status for state in states.values()} == {
        "Gardening.pdf": "indexed", "Astronomy.pdf": "indexed", "Cooking.pdf": "indexed",
        "Broken.pdf": "skipped", "Locked.pdf": "skipped"}


async def test_changes_trash_deletion_and_moves_out(google: GoogleStandIn,
                                                    database: Database) -> None:
    changed = google.add_pdf("Changed.pdf", pdf_for("walrus"))
    trashed = google.add_pdf("Trashed.pdf", pdf_for("pelican"))
    deleted = google.add_pdf("Deleted.pdf", pdf_for("narwhal"))
    moved = google.add_pdf("Moved.pdf", pdf_for("axolotl"))
    renamed = google.add_pdf("Old name.pdf", pdf_for("capybara"))
    google.add_pdf("Kept.pdf", pdf_for("lemur"))
    sync = drive_sync(google, database)
    await sync.run()

    google.update(changed, pdf_for("flamingo"))
    google.trash(trashed)
    google.delete(deleted)
    google.move(moved, "another-folder")
    google.rename(renamed, "New name.pdf")
    report = await sync.run()
    assert (report.files_total, report.downloaded, report.removed, report.unchanged) \
        == (3, 1, 3, 2)
    for gone in ("walrus", "pelican", "narwhal", "axolotl"):
        assert (await store.search(database, gone))[1] == 0, gone
    hits, _ = await store.search(database, "flamingo")
    assert hits[0].document == "Changed.pdf"
    hits, _ = await store.search(database, "capybara")
    assert hits[0].document == "New name.pdf"  # renamed without a download
    assert google.downloads[renamed] == 1
    assert await store.passage_count(database) == 6  # three documents of two pages


async def test_one_bad_file_never_stops_the_run(google: GoogleStandIn,
                                                database: Database) -> None:
    bad = google.add_pdf("a.pdf", pdf_for("aardvark"))
    google.add_pdf("b.pdf", pdf_for("badger"))
    google.fail_next(f"media:{bad}", *[500] * 4)  # fails on every attempt
    report = await drive_sync(google, database).run()
    assert (report.status, report.downloaded, report.skipped) == ("done", 1, 1)
    assert report.skipped_files[0][1] == "DriveError 500: Drive answered 500 (backendError)"
    # Fetched again (and indexed) on the next run.
    again = await drive_sync(google, database).run()
    assert (again.downloaded, again.unchanged, again.skipped) == (1, 1, 0)


async def test_too_large_files_are_skipped_without_downloading(
        google: GoogleStandIn, database: Database) -> None:
    google.add_pdf("huge.pdf", make_pdf(["word " * 5000]))
    report = await drive_sync(google, database, max_bytes=2048).run()
    assert report.skipped_files == [("huge.pdf", "too large")]
    assert google.calls["media"] == 0


async def test_a_listing_failure_fails_the_run(google: GoogleStandIn,
                                               database: Database) -> None:
    google.fail_next("get", 404)
    report = await drive_sync(google, database).run()
    assert report.status == "failed"
    assert report.error is not None
    assert report.error == "DriveError 404: Drive answered 404 (notFound)"
    row = await store.get_sync_run(database, report.sync_id)
    assert row is not None
    assert row.status == "failed"
    assert row.finished_at is not None


async def test_start_returns_at_once_and_one_sync_runs_at_a_time(
        google: GoogleStandIn, database: Database) -> None:
    for n in range(4):
        google.add_pdf(f"doc{n}.pdf", pdf_for(f"subject{n}"))
    sync = drive_sync(google, database)
    sync_id = await sync.start()
    with pytest.raises(SyncAlreadyRunning) as caught:
        await sync.start()
    assert caught.value.sync_id == sync_id
    other = drive_sync(google, database)  # another "replica" of the same database
    with pytest.raises(SyncAlreadyRunning):
        await other.run()
    deadline = time.monotonic() + 20
    while sync.running:  # the row says done just before the lock is released
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    row = await sync.status(sync_id)
    assert row is not None
    assert (row.status, row.downloaded) == ("done", 4)
    report = await other.run()  # the lock was released
    assert report.unchanged == 4


async def test_advisory_lock_is_shared_by_separate_engines(database: Database) -> None:
    if database.backend != "postgresql":
        pytest.skip("the advisory lock is PostgreSQL's")
    replica = Database(database.url)
    try:
        lock = await store.acquire_sync_lock(database)
        with pytest.raises(SyncAlreadyRunning):
            await store.acquire_sync_lock(replica)
        await lock.release()
        second = await store.acquire_sync_lock(replica)
        await second.release()
    finally:
        await replica.dispose()


async def test_interrupted_runs_are_marked_failed(google: GoogleStandIn,
                                                  database: Database) -> None:
    stale = await store.create_sync_run(database, "manual")  # its process died
    report = await drive_sync(google, database).run()
    assert report.status == "done"
    row = await store.get_sync_run(database, stale)
    assert row is not None
    assert (row.status, row.error) == ("failed",
                                                           "interrupted (process stopped)")


async def test_from_settings_and_schedule(google: GoogleStandIn, database: Database,
                                          make_settings: Callable[..., Settings]) -> None:
    google.add_pdf("scheduled.pdf", pdf_for("quokka"))
    assert DriveSync.from_settings(make_settings(), database, None) is None
    settings = make_settings(google_credentials_json=google.key_json(),
                             drive_folder_id=google.folder_id,
                             drive_api_endpoint=google.drive_endpoint)
    sync = DriveSync.from_settings(settings, database, None, interval=3600, initial_delay=0)
    assert sync is not None
    sync.start_schedule()
    try:
        deadline = time.monotonic() + 20
        while not (await store.recent_sync_runs(database)) \
                or (await store.recent_sync_runs(database))[0].status == "running":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
    finally:
        await sync.close()
    [run] = await store.recent_sync_runs(database)
    assert (run.status, run.trigger, run.downloaded) == ("done", "schedule", 1)
    assert (await store.search(database, "quokka"))[1] == 2  # both pages


async def test_progress_throttle_passes_at_most_one_update_a_second() -> None:
    clock = FakeClock()
    seen: list[tuple[int, int]] = []

    async def edit(done: int, total: int) -> None:
        seen.append((done, total))

    throttle = ProgressThrottle(edit, interval=1.0, clock=clock)
    for done in range(0, 10):
        await throttle(done, 10)
        clock.advance(0.3)
    await throttle(10, 10)
    assert seen == [(0, 10), (4, 10), (8, 10), (10, 10)]


async def test_an_incomplete_listing_removes_nothing(google: GoogleStandIn,
                                                   database: Database) -> None:
    """Drive may answer a listing with `incompleteSearch`: a file missing from it may still be
    in the folder, so nothing is removed from the index on its word."""
    kept = google.add_pdf("a.pdf", pdf_for("aardvark"))
    google.add_pdf("b.pdf", pdf_for("badger"))
    sync = drive_sync(google, database)
    await sync.run()
    google.missing_from_listing.add(kept)
    report = await sync.run()
    assert report.removed == 0
    assert (await store.search(database, "aardvark"))[1] > 0
    google.missing_from_listing.clear()
    google.trash(kept)  # gone for real, and the listing is complete again
    assert (await sync.run()).removed == 1


async def test_a_document_the_database_refuses_is_skipped_and_the_run_goes_on(
        google: GoogleStandIn, database: Database) -> None:
    """A name longer than the table takes, text holding NUL: each document on its own, and
    every other file of the run is still indexed."""
    long_name = google.add_pdf("n" * 600 + ".pdf", pdf_for("narwhal"))
    google.add_pdf("nul.pdf", content_pdf(rb"BT /F1 10 Tf 50 800 Td (wombat\000burrows) Tj ET"))
    for index in range(6):
        google.add_pdf(f"b{index}.pdf", pdf_for(f"topic{index}"))
    report = await drive_sync(google, database).run()
    assert report.status == "done", report.error
    assert report.skipped == 0
    for word in ("narwhal", "wombatburrows", "topic5"):  # a NUL inside a word: dropped
        assert (await store.search(database, word))[1] > 0, word
    states = await store.document_states(database)
    assert len(states[long_name].name) == store.DOCUMENT_NAME_MAX


async def test_a_flate_bomb_is_skipped_once_and_not_fetched_again(
        google: GoogleStandIn, database: Database) -> None:
    bomb = google.add_pdf("bomb.pdf", flate_bomb_pdf())
    google.add_pdf("ok.pdf", pdf_for("walrus"))
    sync = drive_sync(google, database)
    await sync.run()
    await sync.run()
    states = await store.document_states(database)
    assert states[bomb].status == store.STATUS_SKIPPED
    assert states[bomb].error_reason == "too large once decompressed"
    assert google.downloads[bomb] == 1


async def test_any_other_refusal_of_one_document_skips_it_alone(
        google: GoogleStandIn, database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever else the database refuses for one document (not an outage) skips that
    document until it changes."""
    refused = google.add_pdf("refused.pdf", pdf_for("quokka"))
    google.add_pdf("fine.pdf", pdf_for("walrus"))
    replace_document = store.replace_document

    async def refusing(database: Database, **document: Any) -> None:
        if document["drive_file_id"] == refused:
            raise DataError("INSERT ...", {}, ValueError("value out of range"))
        await replace_document(database, **document)

    monkeypatch.setattr(store, "replace_document", refusing)
    sync = drive_sync(google, database)
    report = await sync.run()
    assert report.status == "done", report.error
    assert (await store.search(database, "walrus"))[1] > 0
    assert (await store.document_states(database))[refused].status == store.STATUS_SKIPPED
    await sync.run()
    assert google.downloads[refused] == 1  # not fetched again until it changes


async def test_the_database_going_away_fails_the_run(
        google: GoogleStandIn, database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """An outage is not one document's problem: the run stops and says so (retried later)."""
    google.add_pdf("a.pdf", pdf_for("quokka"))

    async def away(database: Database, **document: Any) -> None:
        raise OperationalError("INSERT ...", {}, ConnectionRefusedError("connection refused"))

    monkeypatch.setattr(store, "replace_document", away)
    report = await drive_sync(google, database).run()
    assert report.status == "failed"
    assert "a.pdf" not in {name for name, _reason in report.skipped_files}
