"""Verifying a request Shopify forwards through the app proxy (the theme's notify-me form).

Shopify signs the forwarded query: drop `signature`, write each parameter as `key=value`
joining a repeated key's values with ",", sort, concatenate with no separator, and take the
hex HMAC-SHA256 with the app's client secret. New parameters may appear, so none are
whitelisted; the identifying ones (`shop`, `timestamp`, `signature`) must appear once. A
timestamp older (or newer) than the tolerance is refused, so a captured request cannot be
replayed later. A valid signature says which shop and which signed-in customer, nothing more.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

# shopify-app-js accepts 90 s either way; the same here.
TOLERANCE_S = 90
SINGLE = ("shop", "timestamp", "signature")


class ProxyRefused(ValueError):
    """The request did not come from Shopify's app proxy (or came too late)."""


@dataclass(frozen=True)
class ProxyRequest:
    shop: str
    path_prefix: str
    # Empty for a guest.
    logged_in_customer_id: str
    timestamp: datetime


def signed_message(pairs: Iterable[tuple[str, str]]) -> str:
    values: dict[str, list[str]] = {}
    for key, value in pairs:
        if key == "signature":
            continue
        values.setdefault(key, []).append(value)
    return "".join(sorted(f"{key}={','.join(vals)}" for key, vals in values.items()))


def sign(pairs: Iterable[tuple[str, str]], secret: str) -> str:
    return hmac.new(
        secret.encode(), signed_message(pairs).encode("utf-8"), hashlib.sha256
    ).hexdigest()


def verify(pairs: list[tuple[str, str]], secret: str, now: datetime | None = None) -> ProxyRequest:
    """The verified request, or ProxyRefused saying why (`pairs`: the query, URL-decoded, in
    order, repeated keys repeated)."""
    counts: dict[str, int] = {}
    for key, _ in pairs:
        counts[key] = counts.get(key, 0) + 1
    for key in SINGLE:
        if counts.get(key, 0) != 1:
            raise ProxyRefused(f"the {key} parameter must appear exactly once")
    given = dict(pairs)
    signature = given["signature"]
    expected = sign(pairs, secret).encode()
    if len(signature) != 64 or not hmac.compare_digest(signature.lower().encode(), expected):
        raise ProxyRefused("the signature does not match")
    try:
        stamp = datetime.fromtimestamp(int(given["timestamp"]), UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise ProxyRefused("the timestamp is not a time") from exc
    age = ((now or datetime.now(UTC)) - stamp).total_seconds()
    if abs(age) > TOLERANCE_S:
        raise ProxyRefused(f"the request is {int(age)} s old; at most {TOLERANCE_S} s is accepted")
    return ProxyRequest(
        shop=given["shop"].strip().lower(),
        path_prefix=given.get("path_prefix", ""),
        logged_in_customer_id=given.get("logged_in_customer_id", ""),
        timestamp=stamp,
    )
