"""The knowledge base as the bot and the API use it: Drive sync, search, /learn answers.

Built once per process from settings (`KnowledgeBase.open`); each part is optional: without
DRIVE_FOLDER_ID there is no sync, without LLM_* the answers are the best passages themselves.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from knowledge.answers import LearnAnswer, answer_question
from knowledge.llm import ChatClient
from knowledge.progress import ProgressCallback
from store import knowledge as store
from store.database import Database
from utils.config import Settings
from utils.secret_manager import SecretManager
from utils.secret_values import SecretSource

if TYPE_CHECKING:  # the Drive client and pypdf load only where a folder is configured
    from knowledge.sync import DriveSync, SyncReport


class SyncNotConfigured(Exception):
    """DRIVE_FOLDER_ID is not set."""


@dataclass
class KnowledgeBase:
    settings: Settings
    database: Database
    drive: DriveSync | None = None
    llm: ChatClient | None = None

    @classmethod
    def open(cls, settings: Settings, database: Database, *,
             secret_manager: SecretManager | None = None,
             secrets: SecretSource | None = None) -> KnowledgeBase:
        """The parts the settings configure (the LLM key is read on each call: rotation)."""
        api_key = (lambda: secrets.value("LLM_API_KEY")) if secrets is not None else None
        drive = None
        if settings.drive_folder_id:
            from knowledge.sync import DriveSync

            drive = DriveSync.from_settings(settings, database, secret_manager)
        return cls(settings, database, drive=drive,
                   llm=ChatClient.from_settings(settings, api_key=api_key))

    def start(self) -> None:
        """The scheduled sync every DRIVE_SYNC_INTERVAL seconds (0: on demand only)."""
        if self.drive is not None and self.settings.drive_sync_interval > 0:
            self.drive.start_schedule()

    async def close(self) -> None:
        if self.drive is not None:
            await self.drive.close()
        if self.llm is not None:
            await self.llm.close()

    def _drive(self) -> DriveSync:
        if self.drive is None:
            raise SyncNotConfigured
        return self.drive

    async def start_sync(self) -> int:
        """A sync in the background; its id at once (SyncAlreadyRunning when one runs)."""
        return await self._drive().start(trigger="api")

    async def sync_now(self, progress: ProgressCallback | None = None) -> SyncReport:
        return await self._drive().run(progress, trigger="discord")

    async def sync_status(self, sync_id: int) -> store.SyncRunInfo | None:
        return await store.get_sync_run(self.database, sync_id)

    async def search(self, query: str, limit: int, offset: int,
                     ) -> tuple[list[store.SearchHit], int]:
        return await store.search(self.database, query, limit=limit, offset=offset)

    async def answer(self, question: str, guild_id: int | None,
                     on_text: Callable[[str], Awaitable[None]] | None = None) -> LearnAnswer:
        return await answer_question(
            question, database=self.database, guild_id=guild_id, llm=self.llm,
            daily_budget=self.settings.learn_daily_llm_budget, on_text=on_text)
