"""Secrets of bucket connections, encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256).

Keys come from ``STAGECRAFT_ENCRYPTION_KEY`` (or ``STAGECRAFT_ENCRYPTION_KEY_FILE``): one or
more Fernet keys separated by commas, the first encrypts and all decrypt (``MultiFernet``), so
a key is rotated by putting the new one first and running ``manage.py rotate_connection_keys``.
Without it, one key is derived from ``SECRET_KEY`` (HKDF-SHA256): changing ``SECRET_KEY`` then
makes stored secrets unreadable, and they have to be entered again.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from core.exceptions import ApplicationError


def derived_key(secret_key: str) -> bytes:
    """The Fernet key used when no STAGECRAFT_ENCRYPTION_KEY is set."""
    raw = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"stagecraft",
        info=b"stagecraft bucket connection secrets",
    ).derive(secret_key.encode())
    return base64.urlsafe_b64encode(raw)


def _fernet() -> MultiFernet:
    configured = getattr(settings, "STAGECRAFT_ENCRYPTION_KEY", "") or ""
    keys = [k.strip() for k in configured.split(",") if k.strip()]
    if not keys:
        return MultiFernet([Fernet(derived_key(str(settings.SECRET_KEY)))])
    try:
        return MultiFernet([Fernet(k) for k in keys])
    except (ValueError, TypeError):
        raise ImproperlyConfigured(
            "STAGECRAFT_ENCRYPTION_KEY must be Fernet keys (32 url-safe base64-encoded bytes, "
            "e.g. from cryptography.fernet.Fernet.generate_key()), separated by commas."
        ) from None


def encrypt(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode("ascii")


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode("ascii")).decode()
    except InvalidToken:
        raise ApplicationError(
            "The stored secret cannot be decrypted with this server's encryption key "
            "(STAGECRAFT_ENCRYPTION_KEY or SECRET_KEY changed): enter the secret again.",
            field="secret_access_key",
        ) from None


def reencrypt(token: str) -> str:
    """The token under the first (newest) key."""
    return _fernet().rotate(token.encode("ascii")).decode("ascii")
