"""Drive sync of a 100-PDF folder: a first sync, then a re-sync that must download nothing.

The folder is served by a minimal Drive stand-in on 127.0.0.1 (bench/knowledge_support.py) and
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

from bench.knowledge_support import MiniDrive, make_pdf, service_account_json, temporary_database
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


async def plain_fetch(drive: MiniDrive) -> float:
    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        semaphore = asyncio.Semaphore(4)

        async def one(file_id: str) -> None:
            async with semaphore, session.get(
                    f"{drive.url}/drive/v3/files/{file_id}?alt=media") as response:
                await response.read()

        await asyncio.gather(*(one(file_id) for file_id in drive.files))
    return time.perf_counter() - started


async def measure(backend: str, drive: MiniDrive, key_json: str) -> None:
    async with temporary_database(backend) as database:
        async def factory() -> DriveClient:
            return DriveClient(drive_credentials(key_json, boundary_lookup=False),
                               folder_id=drive.folder_id, max_bytes=10_000_000,
                               api_endpoint=drive.url)

        sync = DriveSync(database, factory, interval=0)
        before = drive.media_requests
        first = await sync.run()
        first_requests = drive.media_requests - before
        second = await sync.run()
        print(f"{backend:10} first sync: {first.downloaded} downloaded ({first_requests} media "
              f"requests) in {first.seconds:.2f} s, {first.passages} passages "
              f"= {first.passages / first.seconds:.0f} passages/s | re-sync: "
              f"{second.downloaded} downloaded, {second.unchanged} unchanged in "
              f"{second.seconds:.2f} s ({first.seconds / second.seconds:.1f}x faster)")


async def main(files: int, backends: list[str]) -> None:
    rng = random.Random(7)
    drive = MiniDrive()
    await drive.start()
    try:
        for number in range(files):
            drive.add(f"Document {number:03d}.pdf",
                      make_pdf([page_text(rng, number, page) for page in (1, 2, 3)]))
        key_json = service_account_json(f"{drive.url}/token")
        floor = await plain_fetch(drive)
        print(f"{files} PDFs, {sum(len(c) for _, c, _ in drive.files.values()) / files:.0f} "
              f"bytes each on average; plain aiohttp fetch of all: {floor:.2f} s")
        for backend in backends:
            await measure(backend, drive, key_json)
    finally:
        await drive.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--backends", default="sqlite,postgresql")
    arguments = parser.parse_args()
    configure_logging(level="WARNING")
    asyncio.run(main(arguments.files, arguments.backends.split(",")))
