"""Notify me, the merchant's side in headless Chromium: the settings section (refused input
shown next to the field, then saved) and the waitlist table on the sandbox, Shopify and
BigCommerce admins, with the CSV download. Screenshots go to /tmp/shots/ (BB_SCREENSHOTS
overrides)."""

from __future__ import annotations

import csv
import io
import os
from datetime import timedelta
from pathlib import Path

import pytest
from flask import current_app
from sqlalchemy import select

from plugin.extensions import db
from plugin.models import StoreSettings, Variant, utcnow
from plugin.services import bigcommerce_session
from tests import factories
from tests.shopify_install_helpers import session_token
from tests.test_browser_sandbox import (  # noqa: F401 - fixtures
    CHROMIUM,
    browser,
    live_server,
    seed_tee,
    tab,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"headless Chromium not at {CHROMIUM}"),
]
NOW = utcnow().replace(microsecond=0)
SHOPIFY = "linen-and-wool.myshopify.com"


def shoot(locator, name: str) -> None:
    folder = Path(os.environ.get("BB_SCREENSHOTS") or "/tmp/shots")
    folder.mkdir(parents=True, exist_ok=True)
    locator.screenshot(path=str(folder / f"{name}.png"))


def stored_settings() -> StoreSettings:
    with current_app.extensions["db_sessionmaker"]() as other:
        settings = other.scalars(select(StoreSettings)).one()
        other.expunge(settings)
        return settings


def waiting_for(variant: Variant, count: int, pending: int = 0, start_days: int = 6) -> None:
    """`count` shoppers signed up, oldest first; the last `pending` have not confirmed yet."""
    for n in range(count):
        factories.notify_subscription(
            variant,
            f"shopper{variant.id}-{n}@example.com",
            status="pending" if n >= count - pending else "active",
            created_at=NOW - timedelta(days=start_days, hours=-5 * n),
        )


def test_the_merchant_sets_up_notify_me_on_the_settings_page(live_server, tab):  # noqa: F811
    from playwright.sync_api import expect

    seed_tee()
    page = tab.page
    page.goto(f"{live_server.url}/sandbox/settings")
    section = page.locator("#notify-settings")
    expect(section.get_by_role("heading", name="Notify me when it's back")).to_be_visible()
    expect(section.locator("#notify-double-opt-in-now")).to_contain_text(
        "Now: double opt-in is off for this store"
    )
    shoot(section, "notify-settings")

    page.get_by_label("Alerts per unit restocked (1 to 100)").fill("0")
    page.get_by_label("Minutes between batches (1 to 1440)").fill("30")
    section.locator("#notify-texts-fr summary").click()
    page.locator("#notify_text-fr-heading").fill("De retour chez {boutique} ?")
    page.get_by_role("button", name="Save settings").click()

    section = page.locator("#notify-settings")
    rate = page.get_by_label("Alerts per unit restocked (1 to 100)")
    expect(rate).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#notify_rate_per_unit-error")).to_have_text(
        "Alerts per unit must be between 1 and 100."
    )
    # The French wording opens by itself to show its error, with what was typed kept.
    heading = page.locator("#notify_text-fr-heading")
    expect(heading).to_be_visible()
    expect(heading).to_have_value("De retour chez {boutique} ?")
    expect(page.locator("#notify_text-fr-heading-error")).to_have_text(
        "{shop} is the only placeholder; remove {boutique}."
    )
    shoot(section, "notify-settings-refused")
    assert stored_settings().notify_batch_minutes == 15  # nothing was saved

    rate.fill("2")
    heading.fill("De retour chez {shop} ?")
    page.get_by_label("Double opt-in").select_option(label="On")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".flash.ok")).to_contain_text("Settings saved.")
    expect(page.locator("#notify-double-opt-in-now")).to_contain_text(
        "Now: double opt-in is on for this store (your choice)"
    )
    saved = stored_settings()
    assert (saved.notify_rate_per_unit, saved.notify_batch_minutes) == (2, 30)
    assert saved.notify_double_opt_in is True
    assert saved.notify_texts == {"fr": {"heading": "De retour chez {shop} ?"}}


def test_the_sandbox_admin_shows_who_waits_for_each_variant(live_server, tab):  # noqa: F811
    from playwright.sync_api import expect

    _shop, _product_id, variants = seed_tee()
    large = db.session.scalars(
        select(Variant).where(Variant.platform_id == str(variants["Large"]))
    ).one()
    medium = db.session.scalars(
        select(Variant).where(Variant.platform_id == str(variants["Medium"]))
    ).one()
    waiting_for(large, 7, pending=2)
    waiting_for(medium, 2, start_days=1)

    page = tab.page
    page.goto(f"{live_server.url}/sandbox/")
    table = page.locator("#waitlist")
    expect(table.get_by_role("heading", name="Notify-me waitlist")).to_be_visible()
    expect(table).to_contain_text("9 shoppers wait for 2 variants; 7 confirmed their address")
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator("th")).to_contain_text("Organic cotton tee · Large")
    expect(rows.nth(0).locator("td").nth(0)).to_have_text("7")
    expect(rows.nth(0).locator("td").nth(1)).to_have_text("5")
    expect(rows.nth(0).locator("td").nth(2)).to_have_text("2")
    shoot(table, "waitlist-sandbox")

    with page.expect_download() as download:
        table.get_by_role("link", name="Download the sign-ups (CSV)").click()
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text("utf-8-sig"))))
    assert len(rows) == 1 + 9
    # Grouped by variant, each in sign-up order.
    assert [r[4] for r in rows[1:] if r[3] == "Large"] == [
        f"shopper{large.id}-{n}@example.com" for n in range(7)
    ]


def test_the_shopify_admin_loads_the_waitlist_and_downloads_it(app, live_server, tab):  # noqa: F811
    from playwright.sync_api import expect

    shop = factories.shopify_shop(SHOPIFY)
    small, large = factories.product(
        shop,
        "81",
        "Linen shirt",
        variants=[
            {"platform_id": "811", "title": "Small", "sku": "LIN-S"},
            {"platform_id": "812", "title": "Large", "sku": "LIN-L"},
        ],
    ).variants
    waiting_for(small, 3)
    waiting_for(large, 12, pending=4)

    page = tab.page
    page.route("https://cdn.shopify.com/**", lambda route: route.abort())
    page.goto(
        f"{live_server.url}/shopify/app/support?shop={SHOPIFY}&id_token={session_token(SHOPIFY)}"
    )
    box = page.locator("#waitlist")
    expect(box.locator("#waitlist-summary")).to_have_text(
        "15 shoppers wait for 2 variants; 11 confirmed their address and will be alerted, "
        "in sign-up order, when stock comes back."
    )
    rows = box.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator("th")).to_have_text("Linen shirt · Large LIN-L")
    expect(rows.nth(0).locator("td").nth(0)).to_have_text("12")
    shoot(box, "waitlist-shopify")

    with page.expect_download() as download:
        box.get_by_role("button", name="Download the sign-ups (CSV)").click()
    text = Path(download.value.path()).read_text("utf-8-sig")
    assert len(list(csv.reader(io.StringIO(text)))) == 1 + 15

    # Without App Bridge the page's own links lead on: the notify-me settings are under Settings.
    page.get_by_role("navigation", name="Backorder Badges").get_by_role(
        "link", name="Settings"
    ).click()
    expect(page.locator("#notify-settings")).to_be_visible()
    shoot(page.locator("#notify-settings"), "notify-settings-shopify")


def test_the_bigcommerce_support_page_shows_the_waitlist(app, live_server, tab):  # noqa: F811
    from playwright.sync_api import expect

    shop = factories.bigcommerce_store("wl7bc", owner=7)
    (navy,) = factories.product(
        shop,
        "91",
        "Wool coat",
        variants=[{"platform_id": "911", "title": "Navy / M", "sku": "COAT-NM"}],
    ).variants
    waiting_for(navy, 4, pending=1)
    token = bigcommerce_session.issue(app.config["SECRET_KEY"], "wl7bc", "7")

    page = tab.page
    page.goto(f"{live_server.url}/bigcommerce/app/wl7bc/support?token={token}")
    box = page.locator("#waitlist")
    expect(box).to_contain_text("4 shoppers wait for 1 variant; 3 confirmed their address")
    expect(box.locator("tbody tr th")).to_contain_text("Wool coat · Navy / M")
    shoot(box, "waitlist-bigcommerce")


def test_the_shopify_admin_shows_a_refused_wording_in_its_folded_language(
    app,
    live_server,  # noqa: F811
    tab,  # noqa: F811
):
    from playwright.sync_api import expect

    factories.shopify_shop(SHOPIFY)
    page = tab.page
    page.route("https://cdn.shopify.com/**", lambda route: route.abort())
    page.goto(
        f"{live_server.url}/shopify/app/settings?shop={SHOPIFY}&id_token={session_token(SHOPIFY)}"
    )
    page.locator("#notify-texts-de summary").click()
    page.locator("#notify_text-de-button").fill("Benachrichtigen {preis}")
    page.locator("#notify-texts-de summary").click()  # folded again before saving
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#save-status")).to_contain_text("please fix the 1 field(s)")
    button = page.locator("#notify_text-de-button")
    expect(button).to_be_visible()
    expect(button).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#notify-texts-de .field-error")).to_have_text(
        "{shop} is the only placeholder; remove {preis}."
    )

    button.fill("Bescheid geben")
    page.get_by_label("Alerts per unit restocked (1 to 100)").fill("3")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#save-status")).to_contain_text("Settings saved.")
    saved = stored_settings()
    assert saved.notify_texts == {"de": {"button": "Bescheid geben"}}
    assert saved.notify_rate_per_unit == 3
