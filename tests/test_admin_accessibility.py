"""Every admin page in every shell, as a merchant's browser shows it at 1280 px wide: axe-core
(axe-playwright-python) finds no serious or critical violation, and a screenshot of each page is
kept under tests/artifacts/ (not committed) for CI to keep."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from werkzeug.serving import make_server

from plugin.extensions import db
from plugin.services import sandbox_store
from tests import factories
from tests.bc_callback_helpers import FakeStore, load_jwt
from tests.shopify_install_helpers import session_token

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
SHOPIFY = "cool-shop.myshopify.com"
STORE = "z4zn3wo"
OWNER = 7654321
# What a merchant could not get past: a form they cannot fill in, text they cannot read.
BLOCKING = ("serious", "critical")


@pytest.fixture
def live_url(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def browser_page():
    playwright = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM):
        pytest.skip("Chromium is not installed")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        # Shopify's CDN is unreachable here: the pages must stand on their own.
        page.route("https://cdn.shopify.com/**", lambda route: route.abort())
        yield page
        browser.close()


@pytest.fixture
def shells(app, client):
    """A store on each platform, and the URL of each of its admin pages."""
    sandbox = factories.shop()
    product, hooks = sandbox_store.seed_demo(db.session, sandbox)
    db.session.commit()
    assert sandbox_store.deliver(sandbox, hooks) == [200] * len(hooks)
    factories.shopify_shop(SHOPIFY)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeStore(STORE).install(rsps)
        factories.bigcommerce_store(
            STORE, token=f"token-{STORE}", webhook_secret=f"secret-{STORE}", owner=OWNER
        )
        load = client.get(
            "/bigcommerce/load",
            query_string={"signed_payload_jwt": load_jwt(STORE, user_id=OWNER, owner_id=OWNER)},
        )
        token = parse_qs(urlsplit(load.headers["Location"]).query)["token"][0]
        shopify_token = session_token(SHOPIFY)
        desk_sandbox_variant, desk_bc_variant = _desk_variants(sandbox, STORE)
        yield {
            "sandbox-store": "/sandbox/",
            "sandbox-overview": "/sandbox/overview",
            "sandbox-settings": "/sandbox/settings",
            "sandbox-emails": "/sandbox/emails",
            "sandbox-outbox": "/sandbox/outbox",
            "sandbox-product-page": f"/sandbox/products/{product.id}",
            "sandbox-variants": "/sandbox/variants",
            "sandbox-desk-kpis": "/sandbox/desk/kpis",
            **{
                f"shopify-{name}": f"/shopify/app{path}?shop={SHOPIFY}&id_token={shopify_token}"
                for name, path in [
                    ("overview", ""),
                    ("variants", "/variants"),
                    ("settings", "/settings"),
                    ("emails", "/emails"),
                    ("support", "/support"),
                    ("desk", "/desk"),
                    ("desk-kpis", "/desk/kpis"),
                ]
            },
            "bigcommerce-overview": f"/bigcommerce/app/{STORE}/overview?token={token}",
            "bigcommerce-settings": f"/bigcommerce/app/{STORE}?token={token}",
            "bigcommerce-emails": f"/bigcommerce/app/{STORE}/emails?token={token}",
            "bigcommerce-support": f"/bigcommerce/app/{STORE}/support?token={token}",
            "bigcommerce-variants": f"/bigcommerce/app/{STORE}/variants?token={token}",
            "bigcommerce-desk-kpis": f"/bigcommerce/app/{STORE}/desk/kpis?token={token}",
            "sandbox-desk-variant": f"/sandbox/desk/variants/{desk_sandbox_variant}",
            "sandbox-desk-search": "/sandbox/desk?q=cotton",
            "bigcommerce-desk-search": f"/bigcommerce/app/{STORE}/desk?q=ada&token={token}",
            "bigcommerce-desk-customer": (
                f"/bigcommerce/app/{STORE}/desk/customer?email=ada@example.com&token={token}"
            ),
            "bigcommerce-desk-variant": (
                f"/bigcommerce/app/{STORE}/desk/variants/{desk_bc_variant}?token={token}"
            ),
        }


def _desk_variants(sandbox, store_hash: str) -> tuple[int, int]:
    """A variant of each store for the support desk's variant page (the BigCommerce one with a
    customer waiting and a sign-up, so every section shows)."""
    from sqlalchemy import select

    from plugin.models import Shop, Variant

    first = db.session.scalars(
        select(Variant.id).where(Variant.shop_id == sandbox.id).order_by(Variant.id)
    ).first()
    store = db.session.scalars(select(Shop).where(Shop.domain == store_hash)).one()
    made = factories.product(
        store,
        "desk-p1",
        "Desk coat",
        [{"platform_id": "desk-v1", "sku": "DESK-1", "levels": {"1": 0}}],
    )
    variant = made.variants[0]
    factories.backorder_line(variant, "desk-o1", quantity=2, email="ada@example.com")
    factories.notify_subscription(variant, "waiting@example.com")
    return first, variant.id


def blocking_violations(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{violation['impact']} {violation['id']}: {violation['help']} "
        f"({len(violation['nodes'])}x, e.g. {violation['nodes'][0]['target']})"
        for violation in results.response["violations"]
        if violation.get("impact") in BLOCKING
    ]


def test_every_admin_page_passes_axe_and_is_screenshotted(shells, live_url, browser_page):
    ARTIFACTS.mkdir(exist_ok=True)
    found: dict[str, list[str]] = {}
    for name, path in shells.items():
        response = browser_page.goto(live_url + path)
        assert response is not None and response.status == 200, (name, response and response.status)
        browser_page.wait_for_load_state("networkidle")
        shot = ARTIFACTS / f"{name}-1280.png"
        browser_page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000, f"{name}: the screenshot is blank"
        violations = blocking_violations(browser_page)
        if violations:
            found[name] = violations
    assert found == {}


def test_the_check_does_find_a_form_field_without_a_label(browser_page):
    browser_page.set_content(
        '<!doctype html><html lang="en"><head><title>t</title></head><body><main>'
        '<form><input type="text" name="eta"><button>Save</button></form></main></body></html>'
    )
    assert any("label" in v for v in blocking_violations(browser_page))
