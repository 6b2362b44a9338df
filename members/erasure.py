"""Erasing a person: one function for every path that asks for it.

The Supabase delete event, the GDPR erasure webhook and `/delete_my_data` all call
`erase_person`, so they cannot drift apart: every personal row in the registry goes, the
person's tokens are revoked, their cached premium status is dropped on every replica once the
transaction commits, and one audit row (hashes and counts only) records it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from members.premium import PremiumInvalidator
from store import audit, personal_data, revocations
from store.database import after_commit
from store.personal_data import Identity


@dataclass(frozen=True)
class Erasure:
    identity: Identity
    rows: dict[str, int]  # rows deleted per table

    @property
    def total(self) -> int:
        return sum(self.rows.values())


async def erase_person(session: AsyncSession, premium: PremiumInvalidator | None, *,
                       source: str, user_id: str | None = None,
                       discord_user_id: int | None = None) -> Erasure:
    """Erase everything held on the person, in the caller's transaction. Idempotent."""
    identity = await personal_data.resolve_identity(session, user_id=user_id,
                                                    discord_user_id=discord_user_id)
    rows = await personal_data.erase(session, identity)
    for subject in sorted(identity.user_ids):
        await revocations.revoke_in(session, subject=subject, reason="erased")
    actor: str | int | None = min(identity.user_ids, default=None) \
        or min(identity.discord_user_ids, default=None)
    await audit.record(session, "gdpr.erasure", actor_id=actor, details={
        "source": source, "rows": rows, "accounts": len(identity.user_ids),
        "discord_accounts": len(identity.discord_user_ids)})
    if premium is not None and identity.user_ids:
        user_ids = sorted(identity.user_ids)
        after_commit(session, lambda: premium.invalidate_many(user_ids))
    return Erasure(identity, rows)
