"""Why authentication failed: 401, 403 or 503, with a detail safe to show the caller."""

from __future__ import annotations


class AuthError(Exception):
    """401 (bad credentials), 403 (missing scope or role) or 503 (provider unreachable)."""

    def __init__(self, status: int, detail: str, *, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.retry_after = retry_after


class ProviderUnreachable(AuthError):
    def __init__(self, *, retry_after: int = 5) -> None:
        super().__init__(503, "authentication provider unreachable", retry_after=retry_after)
