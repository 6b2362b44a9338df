"""Service-account credentials for Drive (read-only scope).

The key is a service-account JSON key: in production it is the Secret Manager secret named by
`GOOGLE_SECRET_NAME`, in development the inline `GOOGLE_CREDENTIALS_JSON`. The key's own
`token_uri` is where the signed JWT assertion is exchanged for an access token.
"""

from __future__ import annotations

from google.oauth2 import service_account

from utils.config import Settings
from utils.secret_manager import (
    CredentialsError,
    InvalidReference,
    SecretError,
    SecretManager,
    is_reference,
    parse_reference,
    service_account_credentials,
)

DRIVE_SCOPE = "https://www.googleapis.com/auth/drive.readonly"

__all__ = ["DRIVE_SCOPE", "CredentialsError", "drive_credentials",
           "drive_credentials_from_settings", "load_drive_key"]


def drive_credentials(key_json: str, *,
                      boundary_lookup: bool = True) -> service_account.Credentials:
    """Read-only Drive credentials from a service-account key (JSON text).

    `boundary_lookup=False` when Drive is reached through an endpoint override: google-auth then
    never calls the public IAM credentials service after a token refresh.
    """
    return service_account_credentials(key_json, scopes=[DRIVE_SCOPE],
                                       boundary_lookup=boundary_lookup)


async def load_drive_key(settings: Settings, secrets: SecretManager | None) -> str:
    """The key JSON: GOOGLE_SECRET_NAME (`NAME`, `NAME@VERSION` or `gsm:...`) through Secret
    Manager when set, else GOOGLE_CREDENTIALS_JSON. CredentialsError names what is missing."""
    name = settings.google_secret_name
    if name:
        if secrets is None:
            raise CredentialsError("GOOGLE_SECRET_NAME is set but GOOGLE_PROJECT_ID is not")
        try:
            reference = parse_reference(name if is_reference(name) else f"gsm:{name}")
        except InvalidReference as exc:
            raise CredentialsError(f"GOOGLE_SECRET_NAME: {exc}") from None
        try:
            return (await secrets.fetch(reference)).value
        except SecretError as exc:
            raise CredentialsError(f"GOOGLE_SECRET_NAME: {exc}") from None
    if settings.google_credentials_json is not None:
        return settings.google_credentials_json.get_secret_value()
    raise CredentialsError("no Drive credentials: set GOOGLE_SECRET_NAME or "
                           "GOOGLE_CREDENTIALS_JSON")


async def drive_credentials_from_settings(
        settings: Settings, secrets: SecretManager | None) -> service_account.Credentials:
    """Drive credentials as configured (see `load_drive_key`)."""
    key = await load_drive_key(settings, secrets)
    return drive_credentials(key, boundary_lookup=settings.drive_api_endpoint is None)
