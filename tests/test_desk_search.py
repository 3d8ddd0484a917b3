"""The support desk's one search box (issue 12, must-have 1): an order number, a customer's
address or its start, a SKU or its start, any part of a product's name; only the shop's own;
bad input refused with a message; every query on an index (EXPLAIN on a seeded PostgreSQL)."""

from __future__ import annotations

import re
import threading
from html import unescape
from pathlib import Path

import pytest
from sqlalchemy import event, text
from werkzeug.serving import make_server

from plugin.extensions import db
from plugin.services import bigcommerce_session, desk_search
from tests import factories
from tests.test_sandbox_order_lifecycle import place

STORE = "deskbc1"
CHROMIUM = "/usr/bin/chromium"
OWNER = 4242


def section(html: str, heading: str) -> str:
    """The text of the result section with this heading ('' when the page has none)."""
    match = re.search(
        rf"<h2 id=\"desk-\w+-heading\">{heading}</h2>(.*?)</section>", html, flags=re.S
    )
    return unescape(match.group(1)) if match else ""


def links(fragment: str) -> list[tuple[str, str]]:
    """(href, text) of each link in a piece of page."""
    return [
        (unescape(href), re.sub(r"<[^>]+>", "", label).strip())
        for href, label in re.findall(r'<a href="([^"]+)">(.*?)</a>', fragment, flags=re.S)
    ]


@pytest.fixture
def sandbox_store(app, client):
    """The sandbox store: two shirts on backorder for Ada (two orders) and one for Grace."""
    owner = factories.shop()
    shirts = factories.sandbox_product(
        owner,
        "Linen Shirt",
        [("Medium", "LIN-M", 0, "continue"), ("Large", "LIN-L", 0, "continue")],
    )
    factories.sandbox_product(owner, "Wool Socks", [("One size", "SOCK-1", 5, "deny")])
    place(client, shirts.variants[0].id, 2, "ada@example.com")  # #1001
    place(client, shirts.variants[1].id, 1, "ada@example.com")  # #1002
    place(client, shirts.variants[0].id, 1, "grace@example.com")  # #1003
    return owner


def search(client, query: str, path: str = "/sandbox/desk", **args):
    return client.get(path, query_string={"q": query, **args})


def test_an_order_number_finds_the_order_with_or_without_its_hash(sandbox_store, client):
    for typed in ("#1002", "1002", " 1002 "):
        page = search(client, typed)
        assert page.status_code == 200
        orders = section(page.text, "Orders")
        assert links(orders) == [("/sandbox/desk/customer?email=ada@example.com", "#1002")]
        # The customer of that order is offered too, with what they are owed now.
        customers = section(page.text, "Customers")
        assert "ada@example.com" in customers and "grace@example.com" not in customers


def test_an_exact_address_or_its_start_finds_the_customer_with_orders_and_units_owed(
    sandbox_store, client
):
    for typed in ("ada@example.com", "ADA@Example.com", "ada@", "ad"):
        page = search(client, typed)
        customers = section(page.text, "Customers")
        assert links(customers) == [
            ("/sandbox/desk/customer?email=ada@example.com", "ada@example.com")
        ], typed
        cells = re.findall(r'<td class="num">(\d+)</td>', customers)
        assert cells == ["2", "3"]  # two orders, three units owed
    both = section(search(client, "a").text + search(client, "g").text, "Customers")
    assert "ada@example.com" in both


def test_a_sku_or_its_start_and_any_part_of_a_title_find_variants(sandbox_store, client):
    by_sku = section(search(client, "LIN-L").text, "Variants")
    assert [label for _href, label in links(by_sku)] == ["Linen Shirt (Large)"]
    prefix = section(search(client, "LIN-").text, "Variants")
    # In SKU order: LIN-L, LIN-M.
    assert [label for _href, label in links(prefix)] == [
        "Linen Shirt (Large)",
        "Linen Shirt (Medium)",
    ]
    medium = next(href for href, label in links(prefix) if label == "Linen Shirt (Medium)")
    assert re.fullmatch(r"/sandbox/desk/variants/\d+", medium)
    assert client.get(medium).status_code == 200
    # Any part of the name, in any case; a wildcard typed is a character, not a wildcard.
    part = section(search(client, "nen sh").text, "Variants")
    assert {label for _href, label in links(part)} == {
        "Linen Shirt (Medium)",
        "Linen Shirt (Large)",
    }
    socks = section(search(client, "ool sock").text, "Variants")
    assert [label for _href, label in links(socks)] == ["Wool Socks (One size)"]
    nothing = search(client, "L%N")
    assert "Nothing in this shop matches “L%N”." in unescape(nothing.text)


def test_bad_input_is_refused_with_a_message(sandbox_store, client):
    long = search(client, "x" * 201)
    assert long.status_code == 400
    assert "Search for at most 200 characters." in long.text
    control = search(client, "ada\x00@example.com")
    assert control.status_code == 400
    assert "characters that cannot be searched" in control.text
    empty = search(client, "   ")
    assert empty.status_code == 200
    assert "Search by order number" in empty.text


def test_the_bigcommerce_desk_searches_its_own_store_only(app, client, sandbox_store):
    store = factories.bigcommerce_store(STORE, owner=OWNER)
    shirt = factories.product(
        store, "p1", "Linen Shirt", [{"platform_id": "v1", "sku": "LIN-M", "title": "M"}]
    )
    factories.backorder_line(shirt.variants[0], "2001", email="bea@example.com")
    token = bigcommerce_session.issue(app.config["SECRET_KEY"], STORE, str(OWNER))
    path = f"/bigcommerce/app/{STORE}/desk"

    orders = section(search(client, "2001", path, token=token).text, "Orders")
    assert [label for _href, label in links(orders)] == ["#2001"]
    (href, _label) = links(orders)[0]
    assert href.startswith(f"/bigcommerce/app/{STORE}/desk/customer?email=bea@example.com")
    assert f"token={token}" in href  # the link keeps the app token
    customers = section(search(client, "bea", path, token=token).text, "Customers")
    assert [label for _href, label in links(customers)] == ["bea@example.com"]
    variants = section(search(client, "LIN-M", path, token=token).text, "Variants")
    assert [label for _href, label in links(variants)] == ["Linen Shirt (M)"]
    assert "Linen Shirt (Medium)" not in variants  # the sandbox's own shirt is not this store's
    # The sandbox's customers and orders are not this store's either.
    page = search(client, "ada@example.com", path, token=token)
    assert "ada@example.com" not in section(page.text, "Customers")
    assert section(search(client, "#1001", path, token=token).text, "Orders") == ""
    # And the sandbox desk does not see the store's customer.
    assert "bea@example.com" not in search(client, "bea").text


# --- indexes, not scans ------------------------------------------------------------------------


def _seed(shop_id: int, rows: int) -> None:
    """`rows` orders, products and variants for one shop, in SQL, then ANALYZE."""
    statements = [
        f"""INSERT INTO products (shop_id, platform_id, title, created_at)
            SELECT {shop_id}, 'bp' || g, 'Product ' || md5(g::text), now()
            FROM generate_series(1, {rows}) g""",
        f"""INSERT INTO variants (shop_id, product_id, platform_id, sku, title, tracked,
                sells_past_zero, inventory_total, created_at)
            SELECT {shop_id}, p.id, 'bv' || p.id, 'SKU-' || p.id, 'Default Title', true, true, 0,
                now()
            FROM products p WHERE p.shop_id = {shop_id}""",
        f"""INSERT INTO orders (shop_id, platform_id, name, placed_at, customer_email,
                created_at, updated_at)
            SELECT {shop_id}, 'bo' || g, '#' || (50000 + g), now(),
                'customer' || g || '@example.com', now(), now()
            FROM generate_series(1, {rows}) g""",
        "ANALYZE products",
        "ANALYZE variants",
        "ANALYZE orders",
        "ANALYZE backorder_lines",
    ]
    for statement in statements:
        db.session.execute(text(statement))
    db.session.commit()


def test_every_search_query_uses_an_index_on_postgresql(app):
    owner = factories.shop()
    _seed(owner.id, 20_000)
    statements: list[tuple[str, object]] = []
    engine = db.engine

    def remember(conn, cursor, statement, parameters, context, executemany):
        # The statements that look a key up (the rest read rows by primary key).
        if any(key in statement for key in (" LIKE ", "orders.name IN", "product_id IN")):
            statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", remember)
    try:
        for typed in ("#51234", "customer1234@", "SKU-1234", "Product 3a7"):
            desk_search.search(db.session, owner, typed)
    finally:
        event.remove(engine, "before_cursor_execute", remember)
    # Per query: the order number, the addresses, the SKU, the titles and their variants.
    assert len(statements) == 4 * 4 - 1  # no title search for an address
    with db.engine.connect() as conn:
        for statement, parameters in statements:
            plan = "\n".join(
                row[0] for row in conn.exec_driver_sql("EXPLAIN " + statement, parameters)
            )
            for table in ("orders", "products", "variants"):
                assert f"Seq Scan on {table}" not in plan, f"{statement}\n{plan}"


# --- in Chromium -------------------------------------------------------------------------------

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@pytest.fixture
def live_url(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def chromium_page():
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM}")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(5000)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page
        browser.close()
        assert errors == [], "JavaScript errors on the page"


@pytest.mark.browser
def test_searching_by_each_key_in_chromium(sandbox_store, live_url, chromium_page):
    from playwright.sync_api import expect

    page = chromium_page
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(f"{live_url}/sandbox/")
    page.get_by_role("link", name="Support desk").click()
    box = page.get_by_role("searchbox", name="Order number, email, SKU or product")
    cases = [
        ("order", "1002", "Orders", "#1002"),
        ("email", "ada@example.com", "Customers", "ada@example.com"),
        ("email-prefix", "gra", "Customers", "grace@example.com"),
        ("sku", "LIN-M", "Variants", "Linen Shirt (Medium)"),
        ("title", "inen shi", "Variants", "Linen Shirt (Large)"),
    ]
    for name, typed, group, found in cases:
        box.fill(typed)
        box.press("Enter")
        expect(page.get_by_role("status")).to_contain_text(f"Results for “{typed}”")
        results = page.get_by_role("region", name=group)
        expect(results.get_by_role("link", name=found, exact=True)).to_be_visible()
        page.screenshot(
            path=str(ARTIFACTS / f"sandbox-desk-search-{name}-1280.png"), full_page=True
        )
    # From a result to the customer's page.
    box.fill("#1001")
    box.press("Enter")
    page.get_by_role("region", name="Orders").get_by_role("link", name="#1001").click()
    expect(page.get_by_role("heading", name="ada@example.com", level=1)).to_be_visible()
