"""The webhook inbox: storing a verified delivery, once per platform event id.

One statement either inserts the event or, for a duplicate, counts the extra delivery: no
savepoint, no read-before-write, no ORM session, since this sits on the webhook endpoint's hot
path.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite

from plugin.models import InboxStatus, Platform, Shop, WebhookEvent, utcnow
from plugin.platforms import webhook_source
from plugin.services.driver_pool import execute_prepared
from plugin.services.shops import shop_webhook_secret
from webhooks.source import Delivery, StoredDelivery, kept_headers

_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


@dataclass(frozen=True)
class Recorded:
    id: int
    status: InboxStatus
    is_new: bool
    shop_id: int | None = None  # whose inbox drain processes it (None: a shop the app lacks)

    @property
    def needs_processing(self) -> bool:
        return self.status in (InboxStatus.PENDING, InboxStatus.FAILED)


@dataclass(frozen=True)
class Arrival:
    """One verified delivery waiting to be stored."""

    platform: str
    delivery: Delivery
    body: bytes
    headers: dict[str, str]


def verify(engine: Engine, platform: str, body: bytes, headers: Mapping[str, str]) -> Arrival:
    """A delivery verified on its raw body, ready to store (`record`, `record_many`).

    A shop's row is read only when the source asks for its webhook secret (its secret column),
    on a connection of its own, taken only then.

    Raises `webhooks.source.WebhookRefused` (nothing stored) if it does not verify, and
    LookupError for a platform the app does not know.
    """
    source = webhook_source(platform)

    def secret_of(domain: str) -> str | None:
        with autocommit(engine).connect() as conn:
            return shop_webhook_secret(conn, platform, domain)

    delivery = source.verify(body, headers, secret_of)
    return Arrival(platform, delivery, body, kept_headers(headers, source.kept_header_prefixes))


# One per engine; engines live as long as the process (`Database` keeps one per URL).
_AUTOCOMMIT: dict[Engine, Engine] = {}


def autocommit(engine: Engine) -> Engine:
    """The engine (same pool) in autocommit: each statement below is atomic on its own, so one
    round trip stores a delivery, instead of BEGIN, INSERT and COMMIT."""
    derived = _AUTOCOMMIT.get(engine)
    if derived is None:
        derived = _AUTOCOMMIT[engine] = engine.execution_options(isolation_level="AUTOCOMMIT")
    return derived


def _statements(dialect: str):
    """The INSERT … ON CONFLICT DO NOTHING and the duplicate's UPDATE, built once per dialect:
    SQLAlchemy compiles each once and serves it from its compiled cache after that."""
    built = _BUILT.get(dialect)
    if built is None:
        events = WebhookEvent.__table__
        shops = Shop.__table__
        shop_id = (
            select(shops.c.id)
            .where(shops.c.platform == bindparam("shop_platform", type_=shops.c.platform.type))
            .where(shops.c.domain == bindparam("lookup_domain", type_=shops.c.domain.type))
            .limit(1)
            .scalar_subquery()
        )
        insert = (
            _INSERTS[dialect](events)
            .values(
                platform=bindparam("platform", type_=events.c.platform.type),
                shop_id=shop_id,
                shop_domain=bindparam("shop_domain", type_=events.c.shop_domain.type),
                topic=bindparam("topic", type_=events.c.topic.type),
                event_id=bindparam("event_id", type_=events.c.event_id.type),
                triggered_at=bindparam("triggered_at", type_=events.c.triggered_at.type),
                received_at=bindparam("received_at", type_=events.c.received_at.type),
                body=bindparam("body", type_=events.c.body.type),
                headers=bindparam("headers", type_=events.c.headers.type),
                status=InboxStatus.PENDING,
                deliveries=1,
                attempts=0,
            )
            .on_conflict_do_nothing(index_elements=["platform", "event_id"])
            .returning(events.c.id, events.c.shop_id)
        )
        again = (
            update(events)
            .where(events.c.platform == bindparam("dup_platform", type_=events.c.platform.type))
            .where(events.c.event_id == bindparam("dup_event_id", type_=events.c.event_id.type))
            .values(deliveries=events.c.deliveries + 1)
            .returning(events.c.id, events.c.status, events.c.shop_id)
        )
        built = _BUILT[dialect] = (insert, again)
    return built


_BUILT: dict[str, tuple] = {}


def record(
    conn: Connection,
    platform: str,
    delivery: Delivery,
    body: bytes,
    headers: dict[str, str],
) -> Recorded:
    """Insert the event, or count another delivery of one already stored. `headers` are the
    ones worth keeping (see `webhooks.source.kept_headers`). Each statement commits on its own
    (`conn` is in autocommit): a duplicate's UPDATE only counts, so it needs no transaction
    with the INSERT that found the conflict."""
    insert, again = _statements(conn.dialect.name)
    row = conn.execute(
        insert,
        {
            "platform": platform,
            "shop_platform": Platform(platform),
            "lookup_domain": delivery.shop_domain,
            "shop_domain": delivery.shop_domain,
            "topic": delivery.topic,
            "event_id": delivery.event_id,
            "triggered_at": delivery.triggered_at,
            "received_at": utcnow(),
            "body": body,
            "headers": headers,
        },
    ).first()
    if row is not None:
        return Recorded(row[0], InboxStatus.PENDING, True, row[1])
    existing = conn.execute(
        again, {"dup_platform": platform, "dup_event_id": delivery.event_id}
    ).one()
    return Recorded(existing[0], InboxStatus(existing[1]), False, existing[2])


# Many deliveries in one statement, sent through libpq directly (`execute_prepared`, by
# `plugin.services.ingest`): one JSON parameter (encoded by the json module's C encoder, where
# arrays would be dumped value by value in Python), unpacked in arrival order, so ids follow
# arrival as one at a time would. Its text never changes with the batch's size, so it is
# prepared once per connection. ON CONFLICT DO NOTHING also skips a second delivery of an
# event within the batch, which is then counted by COUNT_AGAIN like any other duplicate.
INSERT_MANY = """
    INSERT INTO webhook_events (platform, shop_id, shop_domain, topic, event_id, triggered_at,
                                received_at, body, headers, status, deliveries, attempts)
    SELECT d.platform,
           (SELECT s.id FROM shops AS s
             WHERE s.platform = d.platform AND s.domain = d.shop_domain LIMIT 1),
           d.shop_domain, d.topic, d.event_id, d.triggered_at, $1::timestamptz,
           decode(d.body, 'base64'), d.headers, 'pending', 1, 0
      FROM json_to_recordset($2::json)
           AS d(n integer, platform text, shop_domain text, topic text, event_id text,
                triggered_at timestamptz, body text, headers json)
     ORDER BY d.n
    ON CONFLICT (platform, event_id) DO NOTHING
    RETURNING platform, event_id, id, shop_id
"""
INSERT_MANY_SQL = INSERT_MANY.encode()
COUNT_AGAIN = """
    UPDATE webhook_events SET deliveries = deliveries + 1
     WHERE platform = %(platform)s AND event_id = %(event_id)s
    RETURNING id, status, shop_id
"""


def record_many(connection, arrivals: list[Arrival]) -> list[Recorded]:
    """`record` for many deliveries in one INSERT, on a psycopg connection in autocommit:
    each one's result, in order. A delivery whose event is already stored (or comes twice in
    `arrivals`) is counted as another delivery of it, one UPDATE each (duplicates are rare)."""
    platforms = [str(Platform(a.platform)) for a in arrivals]
    rows = [
        {
            "n": n,
            "platform": platform,
            "shop_domain": a.delivery.shop_domain,
            "topic": a.delivery.topic,
            "event_id": a.delivery.event_id,
            "triggered_at": a.delivery.triggered_at.isoformat()
            if a.delivery.triggered_at
            else None,
            "body": base64.b64encode(a.body).decode("ascii"),
            "headers": a.headers,
        }
        for n, (platform, a) in enumerate(zip(platforms, arrivals, strict=True))
    ]
    params = [utcnow().isoformat().encode(), json.dumps(rows).encode()]
    result = execute_prepared(connection, b"inbox_insert_many", INSERT_MANY_SQL, params)
    stored = {}
    for i in range(result.ntuples):
        platform, event_id, id_, shop_id = (result.get_value(i, c) for c in range(4))
        stored[(platform.decode(), event_id.decode())] = (
            int(id_),
            int(shop_id) if shop_id is not None else None,
        )
    results = []
    for platform, arrival in zip(platforms, arrivals, strict=True):
        new = stored.pop((platform, arrival.delivery.event_id), None)
        if new is not None:
            results.append(Recorded(new[0], InboxStatus.PENDING, True, new[1]))
            continue
        id_, status, shop_id = connection.execute(
            COUNT_AGAIN, {"platform": platform, "event_id": arrival.delivery.event_id}
        ).fetchone()
        results.append(Recorded(id_, InboxStatus(status), False, shop_id))
    return results


def shown_event_id(event: WebhookEvent) -> str:
    """The event id a merchant or the platform's support would recognise: the platform's own
    header when the delivery had one (the source's `event_id_headers`), else the inbox's key."""
    names = webhook_source(event.platform).event_id_headers
    if names:
        headers = {str(k).lower(): v for k, v in (event.headers or {}).items()}
        for name in names:
            if headers.get(name):
                return str(headers[name])
    return event.event_id


def stored_delivery(event: WebhookEvent) -> StoredDelivery:
    """The stored row as the translators read it: plain data."""
    return StoredDelivery(
        topic=event.topic,
        body=event.body,
        received_at=event.received_at or utcnow(),
        triggered_at=event.triggered_at,
    )
