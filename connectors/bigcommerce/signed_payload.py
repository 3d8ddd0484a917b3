"""Verifying the signed payloads BigCommerce sends to `load`, `uninstall` and `remove_user`.

`signed_payload_jwt` is an HS256 JWT signed with the app's client secret: `aud` is the client id,
`iss` is "bc", `sub` is `stores/{hash}`, and it lives 24 hours. The legacy `signed_payload` is
base64(json) "." base64(hex HMAC-SHA256(json)) with the same secret. Either one is the only proof
that BigCommerce (and not someone who guessed a URL) is naming this store and user, so anything
that does not verify is refused before it can change a thing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import jwt
from jwt.warnings import InsecureKeyLengthWarning

SUBJECT = re.compile(r"^stores/([a-z0-9]{1,32})$")
ISSUER = "bc"
LEEWAY_SECONDS = 60
# The legacy payload has a timestamp but no expiry; hold it to the JWT's 24 hours.
LEGACY_MAX_AGE_SECONDS = 24 * 3600


class PayloadRefused(Exception):
    """The callback's signed payload is missing, forged, expired or not for this app."""


@dataclass(frozen=True)
class CallbackClaims:
    store_hash: str
    user_id: str
    user_email: str
    user_locale: str | None
    owner_id: str | None
    owner_email: str | None
    issued_at: int
    url: str | None = None
    channel_id: int | None = None


def verify_jwt(token: str, client_id: str, client_secret: str) -> CallbackClaims:
    try:
        with warnings.catch_warnings():
            # BigCommerce chooses the client secret's length, not the app.
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            claims = jwt.decode(
                token,
                client_secret,
                algorithms=["HS256"],
                audience=client_id,
                issuer=ISSUER,
                leeway=LEEWAY_SECONDS,
                options={"require": ["aud", "iss", "sub", "exp", "iat"]},
            )
    except jwt.ExpiredSignatureError as exc:
        raise PayloadRefused("the signed payload has expired") from exc
    except jwt.InvalidTokenError as exc:
        raise PayloadRefused(f"the signed payload is not valid: {exc}") from exc
    match = SUBJECT.match(str(claims.get("sub") or ""))
    if match is None:
        raise PayloadRefused("the signed payload does not name a store")
    return _claims(match.group(1), claims, int(claims["iat"]))


def verify_legacy(
    signed_payload: str, client_secret: str, *, now: float | None = None
) -> CallbackClaims:
    encoded_json, dot, encoded_signature = signed_payload.partition(".")
    if not dot or not encoded_json or not encoded_signature:
        raise PayloadRefused("the signed payload is malformed")
    try:
        raw = base64.b64decode(encoded_json, validate=True)
        signature = base64.b64decode(encoded_signature, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PayloadRefused("the signed payload is not base64") from exc
    expected = hmac.new(client_secret.encode(), raw, hashlib.sha256).hexdigest().encode()
    if not hmac.compare_digest(signature, expected):
        raise PayloadRefused("the signed payload's signature does not match")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise PayloadRefused("the signed payload is not JSON") from exc
    if not isinstance(data, dict):
        raise PayloadRefused("the signed payload is not an object")
    store_hash = str(data.get("store_hash") or "")
    context = SUBJECT.match(str(data.get("context") or ""))
    if context is not None and store_hash and context.group(1) != store_hash:
        raise PayloadRefused("the signed payload names two different stores")
    store_hash = store_hash or (context.group(1) if context else "")
    if not re.fullmatch(r"[a-z0-9]{1,32}", store_hash):
        raise PayloadRefused("the signed payload does not name a store")
    issued_at = data.get("timestamp")
    if not isinstance(issued_at, int | float):
        raise PayloadRefused("the signed payload has no timestamp")
    current = time.time() if now is None else now
    if current - issued_at > LEGACY_MAX_AGE_SECONDS:
        raise PayloadRefused("the signed payload has expired")
    return _claims(store_hash, data, int(issued_at))


def verify_callback(
    args: Mapping[str, str], client_id: str, client_secret: str, *, now: float | None = None
) -> CallbackClaims:
    """The JWT when BigCommerce sends one (it always does today), else the legacy payload."""
    token = (args.get("signed_payload_jwt") or "").strip()
    if token:
        return verify_jwt(token, client_id, client_secret)
    legacy = (args.get("signed_payload") or "").strip()
    if legacy:
        return verify_legacy(legacy, client_secret, now=now)
    raise PayloadRefused("the request carries no signed payload")


def _claims(store_hash: str, data: Mapping, issued_at: int) -> CallbackClaims:
    user = data.get("user") if isinstance(data.get("user"), dict) else {}
    owner = data.get("owner") if isinstance(data.get("owner"), dict) else {}
    if user.get("id") in (None, ""):
        raise PayloadRefused("the signed payload names no user")
    channel = data.get("channel_id")
    return CallbackClaims(
        store_hash=store_hash,
        user_id=str(user["id"]),
        user_email=str(user.get("email") or ""),
        user_locale=user.get("locale"),
        owner_id=str(owner["id"]) if owner.get("id") not in (None, "") else None,
        owner_email=owner.get("email"),
        issued_at=issued_at,
        url=data.get("url"),
        channel_id=channel if isinstance(channel, int) else None,
    )
