"""The sandbox's outbox page in headless Chromium: every customer mail with its status,
recipient, kind and subject, each shown as the customer would see it (the HTML part in a
sandboxed frame, and the text part). Set BB_SCREENSHOTS to a folder to keep a screenshot."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from plugin.extensions import db
from plugin.models import VariantBadge
from tests import factories
from tests.test_browser_sandbox import (  # noqa: F401 - fixtures
    CHROMIUM,
    browser,
    live_server,
    screenshot,
    tab,
)
from tests.test_customer_mails import save_settings
from tests.test_sandbox_order_lifecycle import line_of, place, receive, store_with

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"headless Chromium not at {CHROMIUM}"),
]


def test_the_outbox_shows_every_mail_as_the_customer_sees_it(app, live_server, tab):  # noqa: F811
    client = app.test_client()
    vid = store_with(0)
    ada = place(client, vid, 2, "ada@example.com")
    place(client, vid, 1, "grace@example.com")
    receive(client, vid, 1)
    line = line_of(ada)
    eta = db.session.get(VariantBadge, line.variant_id).eta
    save_settings(
        client,
        **{
            f"variant-{line.variant_id}-eta": (eta + timedelta(days=6)).isoformat(),
            "eta_reason": "Our supplier's shipment is late.",
        },
    )
    factories  # noqa: B018 - the builders above commit what the page reads

    page = tab.page
    page.goto(f"{live_server.url}/sandbox/")
    page.get_by_role("link", name="Customer emails").click()
    expect(page.get_by_role("heading", name="Customer emails", level=1)).to_be_visible()
    mails = page.locator("section.mail")
    # Newest first: two ETA notices waiting for the quiet period, ships soon, confirmations.
    expect(mails).to_have_count(5)
    notice = mails.nth(0)
    expect(notice.get_by_text("Pending")).to_be_visible()
    expect(notice.get_by_text("quiet period")).to_be_visible()
    expect(notice.get_by_text("ETA change")).to_be_visible()
    confirmation = mails.nth(4)
    expect(confirmation.get_by_role("heading", level=2)).to_contain_text("on backorder")
    expect(confirmation.get_by_text("To ada@example.com")).to_be_visible()
    expect(confirmation.get_by_text("Sent", exact=True)).to_be_visible()

    frame = confirmation.locator("iframe.mail-html")
    assert frame.get_attribute("sandbox") == ""  # no scripts, no same origin
    html = confirmation.frame_locator("iframe.mail-html")
    expect(html.get_by_text("Tee (Medium)")).to_be_visible()
    expect(html.get_by_role("link", name="Cancel this item or the order")).to_be_visible()
    expect(confirmation.locator("pre.mail-text")).to_contain_text("Tee (Medium)")
    expect(notice.locator("pre.mail-text")).to_contain_text("Our supplier's shipment is late.")
    screenshot(page, "sandbox-outbox")
    if os.environ.get("BB_SCREENSHOTS"):  # a full-page shot leaves frames below the fold blank
        confirmation.screenshot(
            path=str(Path(os.environ["BB_SCREENSHOTS"]) / "sandbox-outbox-confirmation.png")
        )

    page.get_by_role("button", name="Send mails that are due").click()
    expect(page.get_by_role("status")).to_contain_text("Queued 0 due mail(s).")
