"""Notify me, the merchant's waitlist: per variant, who waits and since when, on every admin,
and the CSV export (one row per sign-up, safe to open in a spreadsheet). One store never sees
another's list or addresses."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from sqlalchemy import select

from plugin.extensions import db
from plugin.models import Variant, utcnow
from plugin.services import bigcommerce_session, notify_waitlist, sandbox_store
from tests import factories
from tests.shopify_install_helpers import session_token

NOW = utcnow().replace(microsecond=0)
MINE = "mine-waitlist.myshopify.com"
THEIRS = "theirs-waitlist.myshopify.com"


def catalogue(shop, product_id="10", title="Linen shirt"):
    """Two variants of one product: Small and Large."""
    made = factories.product(
        shop,
        product_id,
        title,
        variants=[
            {"platform_id": f"{product_id}1", "title": "Small", "sku": "LIN-S"},
            {"platform_id": f"{product_id}2", "title": "Large", "sku": "LIN-L"},
        ],
    )
    return made.variants


def sign_ups(small, large):
    """Small: 2 confirmed + 1 pending wait; one older was alerted, one unsubscribed.
    Large: 1 confirmed waits."""

    def ago(hours: int):
        return NOW - timedelta(hours=hours)

    sign_up = factories.notify_subscription
    sign_up(small, "alerted@example.com", status="alerted", created_at=ago(90))
    sign_up(small, "gone@example.com", status="unsubscribed", created_at=ago(80))
    sign_up(small, "first@example.com", created_at=ago(48), locale="fr")
    sign_up(small, "second@example.com", created_at=ago(24))
    sign_up(small, "pending@example.com", status="pending", created_at=ago(2))
    sign_up(large, "large@example.com", created_at=ago(5))


def read_csv(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="waitlist-')
    return list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"))))


def test_the_waitlist_counts_who_waits_per_variant_longest_first(app):
    shop = factories.shopify_shop(MINE)
    small, large = catalogue(shop)
    sign_ups(small, large)
    waitlist = notify_waitlist.waitlist(db.session, shop)
    assert (waitlist.variants, waitlist.waiting, waitlist.confirmed) == (2, 4, 3)
    first, second = waitlist.rows
    assert (first.platform_id, first.sku, first.product, first.variant) == (
        "101",
        "LIN-S",
        "Linen shirt",
        "Small",
    )
    # Alerted and unsubscribed sign-ups no longer wait: not counted, not the oldest.
    assert (first.waiting, first.confirmed, first.unconfirmed) == (3, 2, 1)
    assert first.oldest == NOW - timedelta(hours=48)
    assert (second.platform_id, second.waiting, second.confirmed) == ("102", 1, 1)
    assert second.oldest == NOW - timedelta(hours=5)


def test_the_sandbox_admin_shows_the_waitlist_and_exports_it(client):
    shop = sandbox_store.ensure_shop(db.session)
    db.session.commit()
    product = factories.sandbox_product(
        shop, "Tee", [("Medium", "TEE-M", 0, "deny"), ("Large", "TEE-L", 0, "deny")]
    )
    mirrored = db.session.scalars(
        select(Variant).where(Variant.platform_id == str(product.variants[0].id))
    ).one()
    factories.notify_subscription(mirrored, "ann@example.com", created_at=NOW - timedelta(days=2))
    factories.notify_subscription(mirrored, "bob@example.com", status="pending")

    page = client.get("/sandbox/").get_data(as_text=True)
    assert "Notify-me waitlist" in page
    assert "2 shoppers wait for 1 variant; 1 confirmed their address" in page
    section = page[page.index('id="waitlist"') : page.index('id="orders"')]
    assert "Tee · Large" not in section  # nobody waits for it
    row = section[section.index(f'id="waitlist-{mirrored.platform_id}"') :].split("</tr>")[0]
    assert "Tee · Medium" in row and "SKU TEE-M" in row
    cells = [c.split(">")[-1] for c in row.split("</td>")[:-1]]
    assert cells[:3] == ["2", "1", "1"]

    rows = read_csv(client.get("/sandbox/waitlist.csv"))
    assert rows[0] == list(notify_waitlist.CSV_HEADER)
    assert [r[4] for r in rows[1:]] == ["ann@example.com", "bob@example.com"]
    ann = rows[1]
    assert ann[:4] == [mirrored.platform_id, "TEE-M", "Tee", "Medium"]
    assert ann[5:7] == ["active", "en"]
    assert ann[7] == (NOW - timedelta(days=2)).isoformat(sep=" ")
    assert ann[9:] == ["c0ffee123456", "sandbox"]
    assert rows[2][5] == "pending" and rows[2][8] == ""  # not confirmed yet


def test_the_export_has_one_row_per_sign_up_and_all_1_adds_the_finished_ones(app, client):
    shop = factories.shopify_shop(MINE)
    small, large = catalogue(shop)
    sign_ups(small, large)
    headers = {"Authorization": f"Bearer {session_token(MINE)}"}
    waiting = read_csv(client.get("/shopify/api/waitlist.csv", headers=headers))[1:]
    assert [(r[0], r[4], r[5]) for r in waiting] == [
        ("101", "first@example.com", "active"),
        ("101", "second@example.com", "active"),
        ("101", "pending@example.com", "pending"),
        ("102", "large@example.com", "active"),
    ]
    everyone = read_csv(client.get("/shopify/api/waitlist.csv?all=1", headers=headers))[1:]
    assert len(everyone) == 6
    assert {r[5] for r in everyone} == {"active", "pending", "alerted", "unsubscribed"}
    assert waiting[0][6] == "fr"


def test_cells_a_spreadsheet_would_run_as_formulas_are_made_text(client):
    shop = sandbox_store.ensure_shop(db.session)
    db.session.commit()
    (variant,) = factories.product(
        shop,
        "evil",
        '=HYPERLINK("https://evil.example","click")',
        variants=[{"platform_id": "e1", "title": "@SUM(A1:A9)", "sku": "+1-555"}],
    ).variants
    factories.notify_subscription(variant, "-2+3@example.com", form="api")
    factories.notify_subscription(variant, "plain@example.com")
    rows = read_csv(client.get("/sandbox/waitlist.csv"))
    first, second = rows[1], rows[2]
    assert first[1:5] == [
        "'+1-555",
        '\'=HYPERLINK("https://evil.example","click")',
        "'@SUM(A1:A9)",
        "'-2+3@example.com",
    ]
    assert second[4] == "plain@example.com"  # only cells that need it are changed
    assert notify_waitlist.safe_cell("\t=1") == "'\t=1"
    assert notify_waitlist.safe_cell("a=1") == "a=1"


# -- one store never reaches another's list ---------------------------------------------------


def two_shopify_stores():
    mine, theirs = factories.shopify_shop(MINE), factories.shopify_shop(THEIRS)
    my_small, my_large = catalogue(mine)
    sign_ups(my_small, my_large)
    (their_variant, _) = catalogue(theirs, "20", "Wool coat")
    factories.notify_subscription(their_variant, "their-customer@example.com")
    factories.notify_subscription(their_variant, "first@example.com")  # also signed up there
    return mine, theirs


def test_a_shopify_store_sees_and_exports_only_its_own_waitlist(app, client):
    two_shopify_stores()
    mine = {"Authorization": f"Bearer {session_token(MINE)}"}
    theirs = {"Authorization": f"Bearer {session_token(THEIRS)}"}
    answer = client.get("/shopify/api/waitlist", headers=mine).json
    assert (answer["variants"], answer["waiting"], answer["confirmed"]) == (2, 4, 3)
    assert [r["product"] for r in answer["rows"]] == ["Linen shirt", "Linen shirt"]
    assert answer["rows"][0]["oldest_sign_up"] == (NOW - timedelta(hours=48)).isoformat()
    assert client.get("/shopify/api/waitlist", headers=theirs).json["waiting"] == 2

    exported = read_csv(client.get("/shopify/api/waitlist.csv?all=1", headers=mine))
    assert "their-customer@example.com" not in {r[4] for r in exported}
    assert "Wool coat" not in {r[2] for r in exported}
    theirs_csv = read_csv(client.get("/shopify/api/waitlist.csv", headers=theirs))
    assert {r[4] for r in theirs_csv[1:]} == {"their-customer@example.com", "first@example.com"}

    for path in ("/shopify/api/waitlist", "/shopify/api/waitlist.csv"):
        assert client.get(path).status_code == 401  # no session token, no list


def test_the_shopify_app_page_loads_the_waitlist_from_the_api(app, client):
    factories.shopify_shop(MINE)
    page = client.get(f"/shopify/app/support?shop={MINE}&id_token={session_token(MINE)}")
    html = page.get_data(as_text=True)
    assert 'data-url="/shopify/api/waitlist"' in html
    assert 'data-csv-url="/shopify/api/waitlist.csv"' in html


def test_a_bigcommerce_user_sees_and_exports_only_their_stores_waitlist(app, client):
    mine = factories.bigcommerce_store("wlmine1", owner=7)
    theirs = factories.bigcommerce_store("wltheir2", owner=8)
    small, large = catalogue(mine)
    sign_ups(small, large)
    (their_variant, _) = catalogue(theirs, "20", "Wool coat")
    factories.notify_subscription(their_variant, "their-customer@example.com")
    token = bigcommerce_session.issue(app.config["SECRET_KEY"], "wlmine1", "7")

    page = client.get(f"/bigcommerce/app/wlmine1/support?token={token}").get_data(as_text=True)
    assert "4 shoppers wait for 2 variants; 3 confirmed their address" in page
    assert "Linen shirt · Small" in page and "Wool coat" not in page
    assert f"/bigcommerce/app/wlmine1/waitlist.csv?token={token}" in page

    rows = read_csv(client.get(f"/bigcommerce/app/wlmine1/waitlist.csv?token={token}&all=1"))
    assert len(rows) == 7 and "their-customer@example.com" not in {r[4] for r in rows}
    # My token does not open the other store's export, nor does no token at all.
    assert client.get(f"/bigcommerce/app/wltheir2/waitlist.csv?token={token}").status_code == 403
    assert client.get("/bigcommerce/app/wlmine1/waitlist.csv").status_code == 401


def test_an_empty_waitlist_says_how_shoppers_join_it(client):
    sandbox_store.ensure_shop(db.session)
    db.session.commit()
    page = client.get("/sandbox/").get_data(as_text=True)
    assert "Nobody is waiting yet." in page and "waitlist.csv" not in page
