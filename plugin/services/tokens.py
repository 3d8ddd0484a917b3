"""Store access tokens at rest: encrypted with MultiFernet so keys can be rotated.

The first key in TOKEN_ENCRYPTION_KEYS encrypts; every key decrypts. Rotation is: put the new key
first, keep the old ones after it, run `flask tokens rotate`, then drop the old keys.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app


class TokenDecryptionError(RuntimeError):
    """No configured key opens this token; it was encrypted with a key since removed."""


class TokenVault:
    def __init__(self, keys: Sequence[str]):
        if not keys:
            raise ValueError("at least one Fernet key is needed")
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise TokenDecryptionError(
                "token cannot be decrypted with the configured keys"
            ) from exc

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt under the first (newest) key."""
        try:
            return self._fernet.rotate(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise TokenDecryptionError(
                "token cannot be decrypted with the configured keys"
            ) from exc


def vault() -> TokenVault:
    return current_app.extensions["token_vault"]
