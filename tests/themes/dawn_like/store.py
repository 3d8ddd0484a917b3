"""A Dawn-like Shopify store for the storefront tests, served to Chromium through Playwright's
routes (no network, no app: any request the page makes is recorded and answered here).

Pages are built the way /work/shared/storefront-facts.md describes Dawn 15.4.1: the product
section (`<product-info>` with `<variant-selects>`, the installment form without a submit, the
buy form in `<product-form>` with its `[name="add"]` button), the Section Rendering API
(`?section_id=&option_values=`), the cart drawer and the cart page with the Ajax cart API. The
theme's JavaScript is theme.js next to this file (written for these tests, not Dawn's code).

The app block and the app embed are the extension's own Liquid rendered with python-liquid (as
tests/test_shopify_theme_extension_render.py does), each inside the wrapper Shopify puts around
app blocks AND app embeds on live stores: `<div id="shopify-block-…" class="shopify-block
shopify-app-block">`. Liquid's product.variants stops at 250, as Shopify's does.
"""

from __future__ import annotations

import html
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from liquid import CachingFileSystemLoader, Environment

from tests.test_shopify_theme_extension_render import EXTENSION, _date_for, _json

HERE = Path(__file__).parent
SHOP = "fjord-fell.myshopify.com"
STORE = f"https://{SHOP}"
CDN = "https://cdn.shopify.test/extensions/backorder-badge/assets/"
SECTION = "template--2215__main"
LIQUID_VARIANTS = 250  # product.variants returns at most this many


@dataclass
class Variant:
    id: int
    options: tuple[str, ...]
    state: str | None
    label: str = ""
    eta: str | None = None
    price: str = "€129,00"

    @property
    def title(self) -> str:
        return " / ".join(self.options)

    def liquid(self) -> dict:
        fields = {}
        if self.state is not None:
            fields = {"state": {"value": self.state}, "label": {"value": self.label}}
            if self.eta:
                fields["eta"] = {"value": self.eta}
        return {"id": self.id, "title": self.title, "metafields": {"$app:backorder": fields}}


@dataclass
class Product:
    id: int
    handle: str
    title: str
    options: dict[str, list[str]]  # option name -> values, in order
    variants: list[Variant]
    pickers: dict[str, str] = field(default_factory=dict)  # option name -> "pills" | "dropdown"

    @property
    def url(self) -> str:
        return f"/products/{self.handle}"

    def value_id(self, option: int, value: str) -> str:
        return str(1000 * (option + 1) + list(self.options.values())[option].index(value))

    def find(self, options: tuple[str, ...]) -> Variant | None:
        return next((v for v in self.variants if v.options == options), None)

    def by_id(self, variant_id: str | int | None) -> Variant | None:
        return next((v for v in self.variants if str(v.id) == str(variant_id)), None)

    def by_value_ids(self, ids: list[str]) -> Variant | None:
        values = []
        for n, choices in enumerate(self.options.values()):
            match = [c for c in choices if self.value_id(n, c) == ids[n]]
            values.append(match[0] if match else None)
        return self.find(tuple(values))

    def liquid(self, selected: Variant | None) -> dict:
        chosen = selected or self.variants[0]
        return {
            "id": self.id,
            "url": self.url,
            "title": self.title,
            "variants": [v.liquid() for v in self.variants[:LIQUID_VARIANTS]],
            "variants_count": len(self.variants),
            "selected_or_first_available_variant": chosen.liquid(),
        }


def sweater() -> Product:
    """Size pills and a colour dropdown; Large in Navy does not exist."""
    states = {
        ("Small", "Sage"): ("in_stock", "In stock", None),
        ("Medium", "Sage"): ("backorder", "Backorder, ships by December 24, 2026", "2026-12-24"),
        ("Large", "Sage"): ("out_of_stock", "Out of stock", None),
        ("Small", "Navy"): ("backorder", "Backorder, ships by January 15, 2027", "2027-01-15"),
        ("Medium", "Navy"): ("in_stock", "In stock", None),
    }
    variants = [
        Variant(44001 + n, options, *badge) for n, (options, badge) in enumerate(states.items())
    ]
    return Product(
        8123456789,
        "merino-crew",
        "Merino crew sweater",
        {"Size": ["Small", "Medium", "Large"], "Colour": ["Sage", "Navy"]},
        variants,
        {"Size": "pills", "Colour": "dropdown"},
    )


def big_product() -> Product:
    """1,200 variants (40 lengths x 30 colours): Liquid lists only the first 250."""
    lengths = [f"{n} m" for n in range(1, 41)]
    colours = [f"Colour {n:02d}" for n in range(1, 31)]
    variants = []
    for n, (length, colour) in enumerate(itertools.product(lengths, colours)):
        kind = ("in_stock", "backorder", "out_of_stock")[n % 3]
        label = {
            "in_stock": "In stock",
            "backorder": f"Backorder, ships by March {1 + n % 28}, 2027",
            "out_of_stock": "Out of stock",
        }[kind]
        eta = f"2027-03-{1 + n % 28:02d}" if kind == "backorder" else None
        variants.append(Variant(55000 + n, (length, colour), kind, label, eta, "€4,90"))
    return Product(
        8123456790,
        "climbing-rope",
        "Climbing rope",
        {"Length": lengths, "Colour": colours},
        variants,
        {"Length": "dropdown", "Colour": "dropdown"},
    )


def _translator(locale: str):
    files = [EXTENSION / "locales" / f"{locale}.json", EXTENSION / "locales" / "en.default.json"]
    tables = [json.loads(f.read_text()) for f in files if f.is_file()]

    def t(key: str) -> str:
        for table in tables:
            node = table
            for part in key.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, str):
                return node
        return f"translation missing: {key}"

    return t


def _block_source(name: str) -> tuple[str, dict]:
    text = (EXTENSION / "blocks" / f"{name}.liquid").read_text()
    schema = json.loads(text.split("{% schema %}")[1].split("{% endschema %}")[0])
    settings = {s["id"]: s.get("default") for s in schema["settings"] if "id" in s}
    return re.sub(r"{%\s*schema\s*%}.*?{%\s*endschema\s*%}", "", text, flags=re.S), settings


COLLAPSIBLES = "".join(
    f'<details class="product__accordion"><summary>{title}</summary><p>{body}</p></details>'
    for title, body in (
        ("Materials", "100% merino wool, mulesing-free, from certified farms."),
        ("Shipping &amp; Returns", "Free shipping over €80. Free returns within 30 days."),
        ("Dimensions", "Model is 185 cm and wears a Medium."),
        ("Care Instructions", "Machine wash cold on a wool cycle; dry flat."),
    )
)


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


class Store:
    """The shop: its products, one cart, the pages, and the record of every request."""

    def __init__(
        self,
        products: list[Product],
        *,
        block: bool = True,
        embed: bool = True,
        locale: str = "en",
        shop_config: dict | None = None,
        installment_only: bool = False,
        wrap_embed: bool = True,
    ):
        self.products = {p.handle: p for p in products}
        self.block = block
        self.embed = embed
        self.locale = locale
        self.shop_config = shop_config
        self.installment_only = installment_only  # a product page without a buy button
        self.wrap_embed = wrap_embed  # Shopify's wrapper around the embed (live stores)
        self.cart: list[list] = []  # [variant id, quantity]
        self.requests: list[str] = []  # "METHOD path?query" of every request the page made
        self.hold: set[str] = set()  # assets whose answer waits for release()
        self.held: list = []
        self.env = Environment(
            loader=CachingFileSystemLoader(EXTENSION / "snippets", ext=".liquid")
        )
        self.env.filters["json"] = _json
        self.env.filters["t"] = _translator(locale)
        self.env.filters["date"] = _date_for(locale)
        self.env.filters["asset_url"] = lambda asset: CDN + asset

    # --- lookups ------------------------------------------------------------------------------

    def variant(self, variant_id) -> tuple[Product, Variant]:
        for product in self.products.values():
            found = product.by_id(variant_id)
            if found:
                return product, found
        raise KeyError(variant_id)

    # --- the extension's Liquid ---------------------------------------------------------------

    def _globals(self, page_type: str, product: Product | None, selected: Variant | None) -> dict:
        shop = {"metafields": {"$app:backorder": {}}}
        if self.shop_config is not None:
            shop["metafields"]["$app:backorder"]["storefront"] = {"value": self.shop_config}
        items = []
        for variant_id, quantity in self.cart:
            owner, variant = self.variant(variant_id)
            items.append(
                {
                    "title": f"{owner.title} - {variant.title}",
                    "variant_id": variant.id,
                    "quantity": quantity,
                    "variant": variant.liquid(),
                }
            )
        return {
            "shop": shop,
            "request": {"page_type": page_type, "locale": {"iso_code": self.locale}},
            "routes": {"cart_url": "/cart"},
            "cart": {"items": items, "item_count": sum(q for _, q in self.cart)},
            "product": product.liquid(selected) if product else None,
        }

    def render_block(self, name: str, page_type: str, product=None, selected=None) -> str:
        source, settings = _block_source(name)
        block_id = f"{name}_AbC123"
        context = self._globals(page_type, product, selected)
        context["block"] = {"id": block_id, "shopify_attributes": "", "settings": settings}
        context["section"] = {"id": SECTION} if name == "backorder_badge" else None
        body = self.env.from_string(source).render(**context)
        if name == "backorder_embed" and not self.wrap_embed:
            return body
        return (
            f'<div id="shopify-block-{block_id}" class="shopify-block shopify-app-block">'
            f"{body}</div>"
        )

    # --- the theme's sections -----------------------------------------------------------------

    def picker(self, product: Product, selected: Variant | None, chosen: tuple) -> str:
        parts = []
        for n, (name, values) in enumerate(product.options.items()):
            if product.pickers.get(name) == "pills":
                pills = "".join(
                    f'<input type="radio" id="{SECTION}-{n}-{i}" name="{name}-{SECTION}"'
                    f' value="{_esc(v)}" data-option-value-id="{product.value_id(n, v)}"'
                    f"{' checked' if chosen[n] == v else ''}>"
                    f'<label for="{SECTION}-{n}-{i}">{_esc(v)}</label>'
                    for i, v in enumerate(values)
                )
                parts.append(
                    f'<fieldset class="product-form__input--pill"><legend>{_esc(name)}</legend>'
                    f"{pills}</fieldset>"
                )
            else:
                options = "".join(
                    f'<option value="{_esc(v)}" data-option-value-id="{product.value_id(n, v)}"'
                    f"{' selected' if chosen[n] == v else ''}>{_esc(v)}</option>"
                    for v in values
                )
                parts.append(
                    f'<div class="product-form__input--dropdown">'
                    f'<label for="Option-{SECTION}-{n}">{_esc(name)}</label>'
                    f'<select id="Option-{SECTION}-{n}" name="options[{_esc(name)}]">'
                    f"{options}</select></div>"
                )
        data = json.dumps({"id": selected.id} if selected else None)
        return (
            f"<variant-selects>{''.join(parts)}"
            f'<script type="application/json" data-selected-variant>{data}</script>'
            f"</variant-selects>"
        )

    def product_section(self, product: Product, selected: Variant | None, chosen=None) -> str:
        chosen = chosen or (selected or product.variants[0]).options
        shown = selected or product.variants[0]
        variant_id = selected.id if selected else ""
        sold_out = selected is None or selected.state == "out_of_stock"
        button_text = "Sold out" if sold_out else "Add to cart"
        if selected is None:
            button_text = "Unavailable"
        buy = (
            ""
            if self.installment_only
            else f"""<product-form class="product-form">
          <form method="post" action="/cart/add" id="product-form-{SECTION}" class="form"
                accept-charset="UTF-8" enctype="multipart/form-data">
            <input type="hidden" name="form_type" value="product">
            <input type="hidden" name="id" value="{variant_id}" class="product-variant-id">
            <div class="product-form__buttons">
              <button id="ProductSubmitButton-{SECTION}" type="submit" name="add"
                      class="product-form__submit button"{" disabled" if sold_out else ""}>
                <span>{button_text}</span></button>
            </div>
            <input type="hidden" name="product-id" value="{product.id}">
            <input type="hidden" name="section-id" value="{SECTION}">
          </form>
        </product-form>"""
        )
        block = (
            self.render_block("backorder_badge", "product", product, selected) if self.block else ""
        )
        return f"""<div id="shopify-section-{SECTION}" class="shopify-section section">
<section id="MainProduct-{SECTION}" class="section-{SECTION}-padding" data-section="{SECTION}">
  <div class="product">
    <div class="product__media" role="img" aria-label="{_esc(product.title)}"></div>
    <product-info data-section="{SECTION}" data-url="{product.url}" data-product-id="{product.id}"
                  class="product__info-container">
      <p class="product__text caption">Fjord &amp; Fell</p>
      <h1>{_esc(product.title)}</h1>
      <div id="price-{SECTION}" class="price">{_esc(shown.price)}</div>
      <form method="post" action="/cart/add" id="product-form-installment-{SECTION}"
            class="installment" accept-charset="UTF-8" enctype="multipart/form-data">
        <input type="hidden" name="form_type" value="product">
        <input type="hidden" name="id" value="{variant_id}">
        <p class="installments">Pay in 4 interest-free installments. Learn more</p>
      </form>
      {self.picker(product, selected, chosen)}
      {buy}
      {block}
      <div class="product__description">
        <p>Knitted in Portugal from soft, traceable merino wool. Regular fit, ribbed cuffs and
        hem. Machine wash cold on a wool cycle; dry flat.</p>
      </div>
      {COLLAPSIBLES}
    </product-info>
  </div>
</section></div>"""

    def cart_lines(self, prefix: str) -> str:
        rows = []
        for n, (variant_id, quantity) in enumerate(self.cart, start=1):
            owner, variant = self.variant(variant_id)
            rows.append(
                f'<tr id="{prefix}-Item-{n}" class="cart-item">'
                f'<td class="cart-item__details"><a href="{owner.url}?variant={variant.id}"'
                f' class="cart-item__name">{_esc(owner.title)}</a>'
                f'<div class="product-option">{_esc(variant.title)}</div></td>'
                f'<td class="cart-item__quantity"><input type="number" name="updates[]"'
                f' value="{quantity}" min="0" data-index="{n}"'
                f' aria-label="Quantity for {_esc(owner.title)}">'
                f'<button type="button" data-remove data-index="{n}"'
                f' aria-label="Remove {_esc(variant.title)}">Remove</button></td>'
                f'<td class="cart-item__totals">{_esc(variant.price)}</td></tr>'
            )
        return f'<table class="cart-items"><tbody>{"".join(rows)}</tbody></table>'

    def cart_drawer_section(self) -> str:
        count = sum(q for _, q in self.cart)
        footer = (
            """<div class="drawer__footer">
        <div class="cart-drawer__footer"><div class="totals" role="status">
          <h2 class="totals__total">Estimated total</h2></div>
          <small class="tax-note">Taxes and shipping calculated at checkout</small></div>
        <div class="cart__ctas">
          <button type="submit" id="CartDrawer-Checkout" class="cart__checkout-button button"
                  name="checkout" form="CartDrawer-Form">Check out</button>
        </div>
      </div>"""
            if self.cart
            else ""
        )
        return f"""<div id="shopify-section-cart-drawer" class="shopify-section">
<cart-drawer class="drawer{" is-empty" if not count else ""}">
  <div id="CartDrawer" class="cart-drawer">
    <div class="drawer__inner" role="dialog" aria-modal="true" aria-label="Your cart">
      <div class="drawer__header"><h2 class="drawer__heading">Your cart</h2></div>
      <form action="/cart" id="CartDrawer-Form" class="cart__contents cart-drawer__form"
            method="post">
        <div id="CartDrawer-CartItems" class="drawer__contents js-contents">
          {self.cart_lines("CartDrawer")}
        </div>
      </form>
      {footer}
    </div>
  </div>
</cart-drawer></div>"""

    def cart_bubble(self) -> str:
        count = sum(q for _, q in self.cart)
        section = '<div id="shopify-section-cart-icon-bubble" class="shopify-section">'
        return f"{section}Cart ({count})</div>"

    def main_cart_items(self) -> str:
        return f"""<div id="shopify-section-main-cart-items" class="shopify-section">
<cart-items class="cart-items-section">
  <h1 class="title">Your cart</h1>
  <form action="/cart" class="cart__contents" method="post" id="cart">
    <div class="cart__items" id="main-cart-items" data-id="main-cart-items">
      <div class="js-contents">{self.cart_lines("CartItem")}</div>
    </div>
  </form>
</cart-items></div>"""

    def main_cart_footer(self) -> str:
        count = sum(q for _, q in self.cart)
        return f"""<div id="shopify-section-main-cart-footer" class="shopify-section">
<div class="cart__footer" id="main-cart-footer" data-id="main-cart-footer">
  <div class="cart__blocks">
    <div class="js-contents"><div class="totals"><h2 class="totals__total">Estimated total</h2>
      <p class="totals__total-value">{count} item(s)</p></div></div>
    <div class="cart__ctas">
      <button type="submit" id="checkout" class="cart__checkout-button button" name="checkout"
              form="cart"{" disabled" if not count else ""}>Check out</button>
    </div>
  </div>
</div></div>"""

    # --- whole pages --------------------------------------------------------------------------

    def page(self, page_type: str, main: str, product=None, selected=None) -> str:
        embed = (
            self.render_block("backorder_embed", page_type, product, selected) if self.embed else ""
        )
        # Shopify loads each enabled block's stylesheet (the schema's) in <head>.
        styles = "".join(
            f'<link rel="stylesheet" href="{CDN}{name}">'
            for name, on in (
                ("backorder-badge.css", self.block),
                ("backorder-embed.css", self.embed),
            )
            if on
        )
        return f"""<!doctype html>
<html lang="{self.locale}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Fjord &amp; Fell</title>
<link rel="stylesheet" href="/theme/theme.css">
{styles}
<script src="{CDN}backorder-badge.js" defer="defer"></script>
<script src="/theme/theme.js" defer="defer"></script>
</head><body>
<div class="announcement-bar">Free shipping on orders over €80</div>
<header class="header"><a class="header__heading" href="/">FJORD &amp; FELL</a>
  <nav><a href="/collections/all">Shop</a><a href="/pages/journal">Journal</a>
  <a href="/cart" id="cart-icon-bubble">Cart ({sum(q for _, q in self.cart)})</a></nav></header>
{self.cart_drawer_section()}
<main id="MainContent" class="content-for-layout" role="main">
{main}
<section class="shopify-section section related">
  <h2>You may also like</h2>
  <div class="grid"><div class="card"></div><div class="card"></div><div class="card"></div>
  <div class="card"></div></div>
</section>
</main>
<footer class="footer"><p>© 2026 Fjord &amp; Fell · Powered by Shopify</p></footer>
{embed}
</body></html>"""

    def product_page(self, product: Product, variant_id=None) -> str:
        selected = product.by_id(variant_id) if variant_id else None
        if selected is None:
            selected = next(
                (v for v in product.variants if v.state != "out_of_stock"), product.variants[0]
            )
        return self.page("product", self.product_section(product, selected), product, selected)

    def cart_page(self) -> str:
        return self.page("cart", self.main_cart_items() + self.main_cart_footer())

    # --- the Ajax cart API --------------------------------------------------------------------

    def sections(self, names) -> dict:
        known = {
            "cart-drawer": self.cart_drawer_section,
            "cart-icon-bubble": self.cart_bubble,
            "main-cart-items": self.main_cart_items,
            "main-cart-footer": self.main_cart_footer,
        }
        return {name: known[name]() for name in names if name in known}

    def add(self, body: dict) -> dict:
        variant_id = int(body["id"])
        quantity = int(body.get("quantity") or 1)
        for line in self.cart:
            if line[0] == variant_id:
                line[1] += quantity
                break
        else:
            self.cart.append([variant_id, quantity])
        names = str(body.get("sections", "")).split(",")
        return {"id": variant_id, "variant_id": variant_id, "sections": self.sections(names)}

    def change(self, body: dict) -> dict:
        line, quantity = int(body["line"]), int(body["quantity"])
        if quantity <= 0:
            del self.cart[line - 1]
        else:
            self.cart[line - 1][1] = quantity
        items = [{"variant_id": v, "quantity": q} for v, q in self.cart]
        return {"items": items, "sections": self.sections(body.get("sections", []))}

    # --- Playwright's route handler -----------------------------------------------------------

    def handle(self, route) -> None:
        request = route.request
        url = urlsplit(request.url)
        self.requests.append(f"{request.method} {url.path}{'?' + url.query if url.query else ''}")
        query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        if request.url.startswith(CDN):
            asset = EXTENSION / "assets" / url.path.rsplit("/", 1)[1]
            kind = "text/css" if asset.suffix == ".css" else "text/javascript"
            if asset.name in self.hold:
                self.held.append((route, asset.read_text(), kind))
                return
            return route.fulfill(status=200, body=asset.read_text(), content_type=kind)
        if url.netloc != SHOP:
            return route.fulfill(status=404, body="not found")
        if url.path.startswith("/theme/"):
            asset = HERE / url.path.rsplit("/", 1)[1]
            kind = "text/css" if asset.suffix == ".css" else "text/javascript"
            return route.fulfill(status=200, body=asset.read_text(), content_type=kind)
        if url.path.startswith("/products/") and url.path.split("/")[2] in self.products:
            product = self.products[url.path.split("/")[2]]
            if "section_id" in query:
                if "option_values" in query:
                    chosen = query["option_values"].split(",")
                    selected = product.by_value_ids(chosen)
                    values = tuple(
                        next(v for v in vals if product.value_id(n, v) == chosen[n])
                        for n, vals in enumerate(product.options.values())
                    )
                    body = self.product_section(product, selected, values)
                else:
                    body = self.product_section(product, product.by_id(query.get("variant")))
                return route.fulfill(status=200, body=body, content_type="text/html")
            page = self.product_page(product, query.get("variant"))
            return route.fulfill(status=200, body=page, content_type="text/html")
        if url.path == "/cart" and request.method == "GET":
            return route.fulfill(status=200, body=self.cart_page(), content_type="text/html")
        if url.path == "/cart/add.js":
            fields = _multipart(request)
            return route.fulfill(status=200, json=self.add(fields))
        if url.path == "/cart/change.js":
            return route.fulfill(status=200, json=self.change(json.loads(request.post_data)))
        return route.fulfill(status=404, body="not found")

    def release(self) -> None:
        held, self.held = self.held, []
        for route, body, kind in held:
            route.fulfill(status=200, body=body, content_type=kind)

    def app_requests(self) -> list[str]:
        """Requests that would reach the app (through the app proxy), or any other host."""
        return [r for r in self.requests if r.split(" ", 1)[1].startswith("/apps/")]


def _multipart(request) -> dict:
    """The fields of a multipart/form-data body (Dawn posts the product form as FormData)."""
    boundary = request.headers["content-type"].split("boundary=")[1]
    fields = {}
    for part in request.post_data_buffer.split(b"--" + boundary.encode()):
        head, _, value = part.partition(b"\r\n\r\n")
        name = re.search(rb'name="([^"]+)"', head)
        if name:
            fields[name.group(1).decode()] = value.rstrip(b"\r\n").decode()
    return fields
