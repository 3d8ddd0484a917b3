"""The CSV import in each shell, as a merchant uses it: download, upload, see every change (or
every bad line) with nothing saved, then "Apply N changes". The sandbox and BigCommerce carry
the checked file as a signed form field; Shopify's embedded page uses the JSON API with a
session token. 10,000 rows go through without a 413; one store's token or plan never touches
another store."""

from __future__ import annotations

import csv
import io
import re
import threading
import time
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from plugin.extensions import db
from plugin.models import Product, Variant
from plugin.services import bigcommerce_session, sandbox_store
from tests import factories
from tests.shopify_install_helpers import session_token

CHROMIUM = Path("/usr/bin/chromium")
SHOT = Path("/tmp/shots/csv-preview.png")
MINE = "mine-csv-shell.myshopify.com"
THEIRS = "theirs-csv-shell.myshopify.com"


@pytest.fixture
def pushes(monkeypatch) -> list[int]:
    """Shops a badge push was scheduled for (real platforms are not reachable from tests)."""
    scheduled: list[int] = []
    monkeypatch.setattr("plugin.jobs.schedule_push", scheduled.append)
    return scheduled


def sandbox_shop():
    shop = sandbox_store.ensure_shop(db.session)
    db.session.commit()
    factories.sandbox_product(
        shop, "Linen shirt", [("Small", "LIN-S", 0, "continue"), ("Large", "LIN-L", 4, "deny")]
    )
    return shop


def mirror(shop) -> dict[str, Variant]:
    variants = db.session.scalars(select(Variant).where(Variant.shop_id == shop.id))
    return {v.sku: v for v in variants}


def upload(client, url: str, text: str, name: str = "variants.csv", **form):
    data = {"file": (io.BytesIO(text.encode("utf-8")), name), **form}
    return client.post(url, data=data, content_type="multipart/form-data")


def signed_plan(page: str) -> str:
    return unescape(re.search(r'name="plan" value="([^"]+)"', page).group(1))


def test_sandbox_refuses_a_bad_file_whole_then_previews_and_applies_a_good_one(app, client):
    shop = sandbox_shop()
    exported = client.get("/sandbox/variants.csv")
    assert exported.mimetype == "text/csv"
    assert "attachment" in exported.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(exported.get_data(as_text=True).removeprefix("\ufeff"))))
    assert [r[1] for r in rows] == ["sku", "LIN-S", "LIN-L"]
    assert "Import or export ETAs" in client.get("/sandbox/settings").get_data(as_text=True)

    eta = factories.today_plus(14).isoformat()
    bad = f"sku,eta,lead_days\nLIN-S,{eta},\nLIN-X,,\nLIN-L,,99999\n"
    answer = upload(client, "/sandbox/variants/import", bad)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert "Nothing was imported" in page and "2 problems" in page
    assert "<td>3</td><td>No variant with SKU &#39;LIN-X&#39; in this store.</td>" in page
    assert "<td>4</td><td>Lead time must be between" in page
    assert 'name="plan"' not in page  # nothing to confirm
    assert mirror(shop)["LIN-S"].eta_override is None

    good = f"sku,eta,lead_days\nLIN-S,{eta},\nLIN-L,,6\n"
    answer = upload(client, "/sandbox/variants/import", good)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert "Apply 2 changes" in page and "to 2 variants, from 2 rows" in page
    assert mirror(shop)["LIN-S"].eta_override is None  # still nothing saved

    done = client.post("/sandbox/variants/import/apply", data={"plan": signed_plan(page)})
    assert done.status_code == 302
    after = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "Imported 2 changes to 2 variants" in after
    db.session.expire_all()
    saved = mirror(shop)
    assert saved["LIN-S"].eta_override.isoformat() == eta
    assert saved["LIN-L"].lead_days_override == 6

    # The same confirmation posted again finds the store changed: refused, nothing written.
    again = client.post("/sandbox/variants/import/apply", data={"plan": signed_plan(page)})
    assert again.status_code == 409
    assert "changed by someone else" in again.get_data(as_text=True)
    forged = client.post("/sandbox/variants/import/apply", data={"plan": "x" + signed_plan(page)})
    assert forged.status_code == 400


def test_ten_thousand_rows_import_through_the_sandbox_without_a_413(app, client, pushes):
    shop = sandbox_store.ensure_shop(db.session)
    product = Product(shop_id=shop.id, platform_id="bulk", title="Bulk tee")
    db.session.add(product)
    db.session.flush()
    db.session.add_all(
        Variant(shop_id=shop.id, product_id=product.id, platform_id=f"v{n}", sku=f"SKU-{n}")
        for n in range(10_000)
    )
    db.session.commit()
    eta = factories.today_plus(30).isoformat()
    text = "variant_id,eta,lead_days,backorder_limit\n" + "".join(
        f"v{n},{eta},{n % 365},{n}\n" for n in range(10_000)
    )
    started = time.monotonic()
    answer = upload(client, "/sandbox/variants/import", text)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200, page[:500]
    assert "Apply 30000 changes" in page and "The first 500 of 30000 changes" in page
    done = client.post("/sandbox/variants/import/apply", data={"plan": signed_plan(page)})
    assert done.status_code == 302
    elapsed = time.monotonic() - started
    db.session.expire_all()
    limits = dict(db.session.execute(select(Variant.platform_id, Variant.backorder_limit)).all())
    assert len(limits) == 10_000 and all(limits[f"v{n}"] == n for n in range(10_000))
    assert pushes == [shop.id]
    assert elapsed < 120, f"10,000 rows took {elapsed:.1f}s"


def test_shopify_checks_and_applies_through_the_json_api(app, client, pushes):
    mine, theirs = factories.shopify_shop(MINE), factories.shopify_shop(THEIRS)
    factories.product(mine, "10", "Linen shirt", [{"platform_id": "101", "sku": "LIN-S"}])
    theirs_variant = factories.product(
        theirs, "90", "Hat", [{"platform_id": "901", "sku": "HAT"}]
    ).variants[0]
    headers = {"Authorization": f"Bearer {session_token(MINE)}"}
    page = client.get(f"/shopify/app/variants?shop={MINE}&id_token={session_token(MINE)}")
    assert 'id="variant-csv"' in page.get_data(as_text=True)
    exported = client.get("/shopify/api/variants.csv", headers=headers)
    assert "101,LIN-S,Linen shirt" in exported.get_data(as_text=True)

    # Their variant's id is unknown here: refused with the line, by JSON or by file upload.
    bad = client.post(
        "/shopify/api/variants/import/check",
        json={"csv": "variant_id,lead_days\n101,5\n901,5\n"},
        headers=headers,
    )
    assert bad.status_code == 422
    assert bad.json["errors"] == [{"line": 3, "reason": "No variant with id '901' in this store."}]

    checked = upload(
        client,
        "/shopify/api/variants/import/check",
        "variant_id,lead_days,backorder_limit\n101,5,\n",
    )
    assert checked.status_code == 401  # no session token
    checked = client.post(
        "/shopify/api/variants/import/check",
        data={"file": (io.BytesIO(b"variant_id,lead_days,backorder_limit\n101,5,2\n"), "v.csv")},
        headers=headers,
    )
    assert checked.status_code == 200
    assert checked.json["change_count"] == 2
    assert checked.json["changes"][0] == {
        "line": 2,
        "variant_id": "101",
        "sku": "LIN-S",
        "variant": "Linen shirt · ",
        "field": "lead_days",
        "old": None,
        "new": 5,
    }
    plan = checked.json["plan"]
    # Another store's token cannot apply my plan.
    other = {"Authorization": f"Bearer {session_token(THEIRS)}"}
    refused = client.post("/shopify/api/variants/import/apply", json={"plan": plan}, headers=other)
    assert refused.status_code == 400 and "another store" in refused.json["error"]

    applied = client.post(
        "/shopify/api/variants/import/apply", json={"plan": plan}, headers=headers
    )
    assert applied.status_code == 200
    assert applied.json["applied"] is True and applied.json["changes"] == 2
    db.session.expire_all()
    variant = mirror(mine)["LIN-S"]
    assert (variant.lead_days_override, variant.backorder_limit) == (5, 2)
    assert db.session.get(Variant, theirs_variant.id).lead_days_override is None
    stale = client.post("/shopify/api/variants/import/apply", json={"plan": plan}, headers=headers)
    assert stale.status_code == 409 and stale.json["errors"][0]["line"] == 2


def test_bigcommerce_imports_with_its_app_token_from_the_settings_page(app, client, pushes):
    mine = factories.bigcommerce_store("csvmine1", owner=7)
    factories.bigcommerce_store("csvtheir2", owner=8)
    factories.product(mine, "10", "Linen shirt", [{"platform_id": "101", "sku": "LIN-S"}])
    token = bigcommerce_session.issue(app.config["SECRET_KEY"], "csvmine1", "7")
    settings = client.get(f"/bigcommerce/app/csvmine1?token={token}").get_data(as_text=True)
    link = f"/bigcommerce/app/csvmine1/variants/import?token={token}"
    assert link in unescape(settings)
    assert client.get(link).status_code == 200
    assert "101,LIN-S" in client.get(
        f"/bigcommerce/app/csvmine1/variants.csv?token={token}"
    ).get_data(as_text=True)
    assert (
        client.get(f"/bigcommerce/app/csvtheir2/variants/import?token={token}").status_code == 403
    )
    assert client.get("/bigcommerce/app/csvmine1/variants/import").status_code == 401

    answer = upload(client, link, "sku,backorder_limit\nLIN-S,4\n")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "Apply 1 change" in page
    done = client.post(
        f"/bigcommerce/app/csvmine1/variants/import/apply?token={token}",
        data={"plan": signed_plan(page)},
    )
    assert done.status_code == 302
    assert "Imported 1 change(s) to 1 variant(s)" in client.get(done.headers["Location"]).get_data(
        as_text=True
    )
    db.session.expire_all()
    assert mirror(mine)["LIN-S"].backorder_limit == 4


# --- the preview page in a real browser ----------------------------------------------------------


@pytest.fixture
def live_url(app) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="csv-live-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"headless Chromium not installed at {CHROMIUM}")
def test_the_preview_page_in_chromium(app, live_url, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    shop = sandbox_shop()
    eta = factories.today_plus(21).isoformat()
    csv_file = tmp_path / "variants.csv"
    csv_file.write_text(f"sku,eta,lead_days,backorder_limit\nLIN-S,{eta},,10\nLIN-L,,5,\n")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{live_url}/sandbox/settings")
        page.get_by_role("link", name="Import or export ETAs, lead times and limits as CSV").click()
        page.get_by_label("CSV file (UTF-8, up to 20,000 rows)").set_input_files(str(csv_file))
        page.get_by_role("button", name="Check the file").click()
        apply_button = page.get_by_role("button", name="Apply 3 changes")
        expect(apply_button).to_be_visible()
        expect(page.get_by_role("row").filter(has_text="Backorder limit")).to_contain_text(
            "10 units"
        )
        SHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOT), full_page=True)
        apply_button.click()
        expect(page.get_by_role("status").first).to_contain_text("Imported 3 changes")
        browser.close()
    db.session.expire_all()
    assert mirror(shop)["LIN-S"].backorder_limit == 10
