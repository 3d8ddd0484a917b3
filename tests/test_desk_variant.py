"""The support desk's variant page: one webhook's whole path in the timeline (received →
decision → pushed to the store → mail sent, each linked to its source), stock per named
location, the badge and why, who waits; "heal now" reconciling this one variant with who did
it; and a record of every badge delivery (and failed try) to the store."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
import responses
from sqlalchemy import func, select

from connectors.shopify import graphql as shopify_graphql
from plugin.extensions import db
from plugin.jobs import push_badges
from plugin.models import (
    BackorderStep,
    BadgeKind,
    BadgePushRecord,
    BadgeTransition,
    StoreLocation,
    Variant,
    VariantBadge,
)
from plugin.services import sandbox_store
from tests import factories, waiting
from tests.shopify_install_helpers import session_token
from tests.shopify_webhook_helpers import ENDPOINT, gql_answer

ARTIFACTS = Path(__file__).parent / "artifacts"


def mirrored(shop, sandbox_variant_id: int) -> Variant:
    db.session.expire_all()
    return db.session.scalar(
        select(Variant).where(
            Variant.shop_id == shop.id, Variant.platform_id == str(sandbox_variant_id)
        )
    )


def out_of_stock_shirt(shop):
    product = factories.sandbox_product(shop, "Linen shirt", [("M / Blue", "LIN-M", 0, "deny")])
    return product.variants[0].id


def entries(html: str) -> list[tuple[str, str]]:
    """(kind, anchor) of each timeline entry, in the page's order."""
    return re.findall(r'<li id="([a-z]+-\d+)" class="[a-z]+" data-kind="([a-z]+)"', html)


def test_the_timeline_shows_one_webhooks_whole_path_in_order_and_linked(smtp_app, smtp):
    shop = factories.shop()
    sandbox_id = out_of_stock_shirt(shop)
    variant = mirrored(shop, sandbox_id)
    factories.notify_subscription(variant, "waiting@example.com")

    hooks = sandbox_store.receive_stock(db.session, shop, sandbox_id, 5)
    db.session.commit()
    assert sandbox_store.deliver(shop, hooks) == [200]
    waiting.wait_until(lambda: len(smtp.mailbox.messages) >= 1, timeout=30, what="the alert")

    client = smtp_app.test_client()
    html = client.get(f"/sandbox/desk/variants/{variant.id}").get_data(as_text=True)
    found = entries(html)
    kinds = [kind for _anchor, kind in found]
    # The restock's own path, after the product's first decision: received → decision →
    # pushed → mail sent.
    last_received = len(kinds) - 1 - kinds[::-1].index("received")
    assert kinds[last_received:] == ["received", "decision", "pushed", "mail"], kinds
    webhook, decision, push, mail = (anchor for anchor, _kind in found[last_received:])
    # Each entry links to its source.
    decision_html = html.split(f'id="{decision}"')[1].split("</li>")[0]
    assert f'href="#{webhook}"' in decision_html
    assert "Out of stock → In stock" in decision_html
    push_html = html.split(f'id="{push}"')[1].split("</li>")[0]
    assert f'href="#{decision}"' in push_html
    assert "Pushed to the store" in push_html
    mail_html = html.split(f'id="{mail}"')[1].split("</li>")[0]
    assert "waiting@example.com" in mail_html and "Mail sent" in mail_html
    webhook_html = html.split(f'id="{webhook}"')[1].split("</li>")[0]
    assert "inventory_levels/update" in webhook_html and "processed" in webhook_html


def test_push_records_every_delivery_and_every_failed_try_on_shopify(app):
    shopify_graphql._BUCKETS.clear()
    shop = factories.shopify_shop()
    factories.product(
        shop,
        "10",
        "Linen shirt",
        variants=[{"platform_id": "7", "badge": ("backorder", "Backorder", date(2026, 12, 8))}],
    )
    badge = db.session.scalars(select(VariantBadge)).one()
    badge.version, badge.pushed_version = 2, 0
    db.session.commit()

    with responses.RequestsMock() as rsps:
        error = {"field": ["metafields"], "message": "Value is invalid", "code": "INVALID"}
        rsps.post(
            ENDPOINT, json=gql_answer({"metafieldsSet": {"metafields": [], "userErrors": [error]}})
        )
        with pytest.raises(Exception, match="Value is invalid"):
            push_badges(shop.id)
    db.session.expire_all()
    (failed,) = db.session.scalars(select(BadgePushRecord)).all()
    assert (failed.outcome, failed.version, failed.state) == ("failed", 2, BadgeKind.BACKORDER)
    assert "Value is invalid" in failed.error
    assert db.session.get(VariantBadge, badge.variant_id).pushed_version == 0  # still pending

    with responses.RequestsMock() as rsps:
        rsps.post(
            ENDPOINT,
            json=gql_answer({"metafieldsSet": {"metafields": [], "userErrors": []}}),
        )
        push_badges(shop.id)
    db.session.expire_all()
    records = db.session.scalars(select(BadgePushRecord).order_by(BadgePushRecord.id)).all()
    assert [(r.outcome, r.version) for r in records] == [("failed", 2), ("pushed", 2)]
    assert db.session.get(VariantBadge, badge.variant_id).pushed_version == 2
    shopify_graphql._BUCKETS.clear()


def test_heal_now_reads_the_store_again_and_writes_who_did_it(app, client):
    """Stock arrived in the store but its webhook was lost: heal now settles the waiting line
    and decides the badge, both written in the timeline with the staff user."""
    shop = factories.shop()
    product = factories.sandbox_product(shop, "Wool coat", [("L", "COAT-L", 0, "continue")])
    sandbox_id = product.variants[0].id
    _order, hooks = factories.sandbox_order(shop, sandbox_id, 2, "ada@example.com")
    assert sandbox_store.deliver(shop, hooks) == [200] * len(hooks)
    variant = mirrored(shop, sandbox_id)
    html = client.get(f"/sandbox/desk/variants/{variant.id}").get_data(as_text=True)
    assert "Lines waiting, oldest first (1)" in html and "ada@example.com" in html
    assert db.session.get(VariantBadge, variant.id).state == BadgeKind.BACKORDER

    sandbox_store.receive_stock(db.session, shop, sandbox_id, 5)  # its webhook never arrives
    db.session.commit()
    response = client.post(f"/sandbox/desk/variants/{variant.id}/heal")
    assert response.status_code == 303
    assert response.location.endswith(f"/sandbox/desk/variants/{variant.id}?healed=changed")

    db.session.expire_all()
    assert db.session.get(VariantBadge, variant.id).state == BadgeKind.IN_STOCK
    steps = db.session.scalars(select(BackorderStep).where(BackorderStep.cause == "support")).all()
    assert steps and {s.staff_user for s in steps} == {"sandbox"}
    transition = db.session.scalars(
        select(BadgeTransition).order_by(BadgeTransition.id.desc())
    ).first()
    assert (transition.cause, transition.staff_user, transition.to_state) == (
        "support",
        "sandbox",
        BadgeKind.IN_STOCK,
    )

    html = client.get(response.location).get_data(as_text=True)
    assert "Healed: this variant was read again from the store" in html
    # Still waiting to ship, now with its 2 units reserved.
    row = html.split('<tr id="line-')[1].split("</tr>")[0]
    assert re.findall(r'<td class="num">(\d+)</td>', row) == ["0", "2"]
    heal_entry = html.split(f'id="decision-{transition.id}"')[1].split("</li>")[0]
    assert "Heal now by support" in heal_entry and "by sandbox" in heal_entry
    assert "Backorder → In stock" in heal_entry
    # The push that followed the heal is in the timeline, linked to the heal's decision.
    push = db.session.scalars(select(BadgePushRecord).order_by(BadgePushRecord.id.desc())).first()
    push_entry = html.split(f'id="push-{push.id}"')[1].split("</li>")[0]
    assert f'href="#decision-{transition.id}"' in push_entry


def test_heal_now_with_nothing_drifted_is_still_written_down(app, client):
    shop = factories.shop()
    variant = mirrored(shop, out_of_stock_shirt(shop))
    before = db.session.get(VariantBadge, variant.id).version

    response = client.post(f"/sandbox/desk/variants/{variant.id}/heal", follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "Checked: the store and the app agree on this variant" in html
    assert "checked, unchanged: Out of stock" in html
    db.session.expire_all()
    assert db.session.get(VariantBadge, variant.id).version == before  # nothing to push
    last = db.session.scalars(select(BadgeTransition).order_by(BadgeTransition.id)).all()[-1]
    assert (last.cause, last.staff_user) == ("support", "sandbox")
    # The support page's "recent badge changes" leaves out a check that changed nothing.
    recent = client.get("/sandbox/").get_data(as_text=True)
    assert "checked, unchanged" not in recent


def shopify_variant():
    shopify_graphql._BUCKETS.clear()
    shop = factories.shopify_shop()
    factories.store_locations(shop, "24826418")
    factories.product(
        shop,
        "788032119674292922",
        "Example T-Shirt",
        variants=[
            {
                "platform_id": "642667041472713922",
                "inventory_item_id": "271878346596884015",
                "title": "Small",
                "levels": {"24826418": 0},
                "badge": ("out_of_stock", "Out of stock", None),
            }
        ],
    )
    return shop, db.session.scalars(select(Variant)).one()


def test_heal_now_on_shopify_records_the_staff_member_and_names_the_location(app, client):
    from tests.shopify_webhook_helpers import product_node, variant_node

    shop, variant = shopify_variant()
    token = session_token(shop.domain)
    product = product_node(
        "788032119674292922",
        [variant_node("642667041472713922", "271878346596884015", {"24826418": 4})],
    )
    location = {"id": "gid://shopify/Location/24826418", "name": "Main warehouse", "isActive": True}
    with responses.RequestsMock() as rsps:
        rsps.post(ENDPOINT, json=gql_answer({"product": product}))
        rsps.post(ENDPOINT, json=gql_answer({"locations": {"nodes": [location]}}))
        written = {
            "metafieldsSet": {"metafields": [], "userErrors": []},
            "metafieldsDelete": {"deletedMetafields": [], "userErrors": []},
        }
        rsps.post(ENDPOINT, json=gql_answer(written))
        response = client.post(
            f"/shopify/app/desk/variants/{variant.id}/heal",
            data={"id_token": token, "shop": shop.domain},
        )
        assert response.status_code == 303
        html = client.get(response.location).get_data(as_text=True)
    assert "Main warehouse" in html and "by shopify:42" in html
    db.session.expire_all()
    assert db.session.get(VariantBadge, variant.id).state == BadgeKind.IN_STOCK
    assert db.session.scalars(select(BadgePushRecord.outcome)).all() == ["pushed"]
    assert db.session.scalars(select(StoreLocation.name)).all() == ["Main warehouse"]
    shopify_graphql._BUCKETS.clear()


def test_heal_now_when_the_platform_fails_says_so_and_writes_nothing(app, client):
    shop, variant = shopify_variant()
    transitions = db.session.scalar(select(func.count()).select_from(BadgeTransition))
    with responses.RequestsMock() as rsps:
        rsps.post(ENDPOINT, status=503, json={"errors": "Service Unavailable"})
        response = client.post(
            f"/shopify/app/desk/variants/{variant.id}/heal",
            data={"id_token": session_token(shop.domain), "shop": shop.domain},
        )
    assert response.status_code == 502
    html = response.get_data(as_text=True)
    assert "The store could not be read, so nothing was changed" in html
    assert "HTTP 503" in html
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(BadgeTransition)) == transitions
    assert db.session.get(VariantBadge, variant.id).state == BadgeKind.OUT_OF_STOCK
    assert db.session.get(Variant, variant.id).inventory_total == 0
    shopify_graphql._BUCKETS.clear()


def test_a_variant_of_another_shop_is_not_found(app, client):
    factories.shop()
    other = factories.shopify_shop()
    factories.product(other, "1", "Secret coat", variants=[{"platform_id": "2"}])
    variant = db.session.scalars(select(Variant)).one()
    response = client.get(f"/sandbox/desk/variants/{variant.id}")
    assert response.status_code == 404
    assert "Secret coat" not in response.get_data(as_text=True)
    assert client.post(f"/sandbox/desk/variants/{variant.id}/heal").status_code == 404


def test_the_timeline_pages_back_from_the_most_recent(app, client, monkeypatch):
    from plugin.services import variant_timeline

    monkeypatch.setattr(variant_timeline, "TIMELINE_PAGE", 3)
    shop = factories.shop()
    sandbox_id = out_of_stock_shirt(shop)
    variant = mirrored(shop, sandbox_id)
    for units in (1, 2, 3):
        hooks = sandbox_store.set_inventory(db.session, shop, sandbox_id, units % 2)
        db.session.commit()
        sandbox_store.deliver(shop, hooks)
    seen: list[str] = []
    url = f"/sandbox/desk/variants/{variant.id}"
    for _page in range(20):
        html = client.get(url).get_data(as_text=True)
        page = [anchor for anchor, _kind in entries(html)]
        assert 0 < len(page) <= 3
        seen = page + seen
        earlier = re.search(r'href="([^"]+before=[^"]+)">Earlier entries', html)
        if not earlier:
            break
        url = earlier.group(1).replace("&amp;", "&")
    assert len(seen) == len(set(seen))  # no entry twice
    db.session.expire_all()
    decisions = db.session.scalar(
        select(func.count())
        .select_from(BadgeTransition)
        .where(BadgeTransition.variant_id == variant.id)
    )
    assert len([a for a in seen if a.startswith("decision-")]) == decisions
    assert len([a for a in seen if a.startswith("webhook-")]) == 4  # the product, 3 stock
    assert len([a for a in seen if a.startswith("push-")]) == decisions


@pytest.mark.browser
@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="headless Chromium missing")
def test_chromium_shows_the_variant_timeline_and_heals_it(smtp_app, smtp):
    import threading

    from playwright.sync_api import expect, sync_playwright
    from werkzeug.serving import make_server

    shop = factories.shop()
    sandbox_id = out_of_stock_shirt(shop)
    variant = mirrored(shop, sandbox_id)
    factories.notify_subscription(variant, "waiting@example.com")
    factories.notify_subscription(variant, "later@example.com")
    hooks = sandbox_store.receive_stock(db.session, shop, sandbox_id, 1)
    db.session.commit()
    assert sandbox_store.deliver(shop, hooks) == [200]
    waiting.wait_until(lambda: len(smtp.mailbox.messages) >= 1, timeout=30, what="the alert")

    server = make_server("127.0.0.1", 0, smtp_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="desk-variant", daemon=True)
    thread.start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=["--headless", "--no-sandbox", "--disable-gpu"],
            )
            tab = browser.new_page(viewport={"width": 1280, "height": 900})
            base = f"http://127.0.0.1:{server.server_port}"
            tab.goto(f"{base}/sandbox/desk/variants/{variant.id}")
            timeline = tab.locator("#timeline > li")
            expect(timeline.last).to_contain_text("Mail sent")
            kinds = [item.get_attribute("data-kind") for item in timeline.all()]
            assert kinds[-4:] == ["received", "decision", "pushed", "mail"]
            expect(tab.locator("#badge-now")).to_contain_text("In stock")
            expect(
                tab.get_by_role("heading", name="Notify-me sign-ups waiting (1)")
            ).to_be_visible()
            # Following a decision's link lands on the webhook that caused it.
            decision = timeline.nth(len(kinds) - 3)
            decision.get_by_role("link", name=re.compile(r"webhook #\d+")).click()
            expect(tab.locator("#timeline > li:target")).to_contain_text("inventory_levels/update")
            ARTIFACTS.mkdir(exist_ok=True)
            tab.screenshot(path=str(ARTIFACTS / "desk-variant-timeline-1280.png"), full_page=True)

            tab.get_by_role("button", name="Heal now").click()
            expect(tab.get_by_role("status")).to_contain_text(
                "Checked: the store and the app agree"
            )
            expect(timeline.last).to_contain_text("Heal now by support")
            expect(timeline.last).to_contain_text("by sandbox")
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
