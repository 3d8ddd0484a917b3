"""What BigCommerce says about the store itself: `GET /v2/store` (V3 has no equivalent for the
time zone) and the names of its inventory locations (`GET /v3/inventory/locations`)."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from connectors.base import ReauthorisationRequired
from connectors.bigcommerce.client import BigCommerceClient
from domain import events as ev

log = logging.getLogger(__name__)

LOCATIONS_LIMIT = 1000
MAX_PAGES = 10_000


def fetch_store(client: BigCommerceClient) -> ev.StoreFacts:
    """`GET /v2/store`: the time zone every ETA is computed in, the default language, the
    country whose holidays close the store, its name, and the address for orders (the
    owner's address when the store has none)."""
    store = client.request("GET", "/v2/store")
    timezone = (store.get("timezone") or {}).get("name")
    country = str(store.get("country_code") or "").strip().upper()
    return ev.StoreFacts(
        timezone=timezone or None,
        locale=store.get("language") or None,
        country=country if len(country) == 2 else None,
        name=store.get("name") or None,
        contact_email=store.get("order_email") or store.get("admin_email") or None,
        storefront_origins=_origins(store.get("secure_url"), store.get("domain")),
        # The storefront's one language: BigCommerce stores publish a single one.
        published_locales=(store["language"],) if store.get("language") else (),
    )


def fetch_locations(client: BigCommerceClient, store_hash: str) -> list[ev.LocationFacts]:
    """The enabled locations and their labels: `GET /v3/inventory/locations` (one call per
    1,000 locations), which needs the `store_locations_read_only` scope. A store that has
    not granted it yet answers 403: names are a convenience, so that is not a reason to
    stop the sync or ask the merchant to re-approve the app; stock still counts by id.
    """
    found: list[ev.LocationFacts] = []
    for page in range(1, MAX_PAGES + 1):
        try:
            body = client.request(
                "GET",
                "/v3/inventory/locations",
                params={"is_active": "true", "limit": LOCATIONS_LIMIT, "page": page},
            )
        except ReauthorisationRequired as exc:
            log.info("no location names for %s: %s", store_hash, exc)
            return found
        rows = [row for row in body.get("data") or [] if isinstance(row, dict)]
        found.extend(
            ev.LocationFacts(id=str(row["id"]), name=str(row.get("label") or "") or None)
            for row in rows
            if row.get("id") is not None and row.get("enabled", True) is not False
        )
        pagination = (body.get("meta") or {}).get("pagination") or {}
        if page >= int(pagination.get("total_pages") or 1):
            break
    return found


def _origins(secure_url: object, domain: object) -> tuple[str, ...]:
    """The storefront's origins: its secure URL's, and its (custom) domain's over HTTPS."""
    found: list[str] = []
    for url in (
        str(secure_url or ""),
        f"https://{domain}" if isinstance(domain, str) and domain else "",
    ):
        parts = urlsplit(url)
        if parts.scheme in ("https", "http") and parts.hostname:
            origin = f"{parts.scheme}://{parts.netloc.lower()}"
            if origin not in found:
                found.append(origin)
    return tuple(found)
