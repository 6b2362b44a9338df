"""Drive sync of a 100-PDF folder: a first sync, then a re-sync that must download nothing.

The folder is served by the loopback Google stand-in (harness/google_standins.py) and
reached through the real google-api-python-client; each PDF has three pages of text. Printed per
backend: files downloaded, seconds, passages indexed per second (first sync), and the re-sync's
downloads and seconds. Beside them, measured in the same run, the time to fetch the same 100
files with plain aiohttp GETs (the transport floor).

    .venv/bin/python -m bench.drive_sync [--files 100] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time

import aiohttp

from bench.knowledge_support import temporary_database
from harness.google_standins import GoogleStandIn
from harness.pdf_factory import make_pdf
from knowledge.credentials import drive_credentials
from knowledge.drive import DriveClient
from knowledge.sync import DriveSync
from utils.logging import configure_logging

_VOCABULARY = ("garden harvest compost orbit telescope solder chisel whisk kettle lantern "
               "harbour meadow glacier canyon falcon beetle violin marble copper willow "
               "saddle anchor beacon quartz ember tundra prairie lagoon summit orchard")
WORDS = _VOCABULARY.split()


def page_text(rng: random.Random, document: int, page: int) -> str:
    sentences = []
    for _ in range(9):
        words = rng.choices(WORDS, k=rng.randint(8, 14))
        sentences.append(" ".join(words).capitalize() + ".")
    return f"Document {document} page {page}. " + " ".join(sentences)


BENCH_TOKEN = "bench-token"  # noqa: S105 (a stand-in's bearer token)


async def plain_fetch(drive: GoogleStandIn) -> float:
    drive.tokens.add(BENCH_TOKEN)
    started = time.perf_counter()
    headers = {"Authorization": f"Bearer {BENCH_TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        semaphore = asyncio.Semaphore(4)

        async def one(file_id: str) -> None:
            async with semaphore, session.get(
                    f"{drive.url}/drive/v3/files/{file_id}?alt=media") as response:
                await response.read()

        await asyncio.gather(*(one(file_id) for file_id in drive.items))
    return time.perf_counter() - started


async def measure(backend: str, drive: GoogleStandIn) -> None:
    async with temporary_database(backend) as database:
        async def factory() -> DriveClient:
            return DriveClient(drive_credentials(drive.key_json(), boundary_lookup=False),
                               folder_id=drive.folder_id, max_bytes=10_000_000,
                               api_endpoint=drive.drive_endpoint)

        sync = DriveSync(database, factory, interval=0)
        before = sum(drive.downloads.values())
        first = await sync.run()
        first_requests = sum(drive.downloads.values()) - before
        second = await sync.run()
        print(f"{backend:10} first sync: {first.downloaded} downloaded ({first_requests} media "
              f"requests) in {first.seconds:.2f} s, {first.passages} passages "
              f"= {first.passages / first.seconds:.0f} passages/s | re-sync: "
              f"{second.downloaded} downloaded, {second.unchanged} unchanged in "
              f"{second.seconds:.2f} s ({first.seconds / second.seconds:.1f}x faster)")


async def main(files: int, backends: list[str]) -> None:
    rng = random.Random(7)
    drive = GoogleStandIn(folder_id="bench-folder", page_size=50)
    await drive.start()
    try:
        for number in range(files):
            drive.add_pdf(f"Document {number:03d}.pdf",
                          make_pdf([page_text(rng, number, page) for page in (1, 2, 3)]))
        floor = await plain_fetch(drive)
        average = sum(len(item.content) for item in drive.items.values()) / files
        print(f"{files} PDFs, {average:.0f} bytes each on average; plain aiohttp fetch of all: "
              f"{floor:.2f} s")
        for backend in backends:
            await measure(backend, drive)
    finally:
        await drive.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--backends", default="sqlite,postgresql")
    arguments = parser.parse_args()
    configure_logging(level="WARNING")
    asyncio.run(main(arguments.files, arguments.backends.split(",")))
