"""A stand-in BigCommerce store built like Cornerstone 6.21, for the storefront script in
headless Chromium (facts: ../shared/storefront-facts.md, read from Cornerstone's source; no code
of the theme is copied here).

The pages carry Cornerstone's markup (`.productView[data-entity-id]`, `form[data-cart-item-add]`
with `input[name=product_id]`, options in `[data-product-option-change]` hidden until the theme
shows them, `.form-field--stock`, `#add-to-cart-wrapper` around `#form-action-addToCart`,
`window.BCData` with `csrf_token` and `product_attributes`) and a small theme script that behaves
like Cornerstone's:

- jQuery's event model, emulated faithfully: `on()` keeps its own handler list per element, fed
  by one native listener (so native changes reach it), while `trigger('change')` walks the
  element's ancestors calling only those lists, never dispatching a DOM event: a change the
  theme triggers (arrow keys on pills, as Cornerstone's radioOptions.js does) never reaches
  `addEventListener` listeners;
- on load it POSTs `/remote/v1/product-attributes/<id>` once (with `x-xsrf-token` and
  `x-requested-with: stencil-utils`) and fires no event; on each option change it POSTs once,
  updates the stock text and the button, then fires `onProductOptionsChanged` on `document`
  with `detail.data` = the answer (`v3_variant_id`, null for a combination that does not exist);
- quick view: `.quickview` opens `#modal` and inserts the product's quick-view HTML
  (`.modal-body.quickView` holding the same product view) into `#modal-content` after load;
- cart page: `[data-cart]` with `[data-cart-content]`; removing a line re-renders the content
  from the server as Cornerstone's cart does; `/api/storefront/carts` answers like the Storefront
  Cart API (`lineItems.physicalItems[]` with `productId`, `variantId`, `name`, `quantity`,
  `options`).

The theme's own requests carry `x-test-caller: theme`, so a test can tell them from the script's.
"""

from __future__ import annotations

import html
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from werkzeug.serving import make_server

from tests.bigcommerce_support import STORE

CSRF_TOKEN = "csrf-5f2c9e"
# product id -> {option value ids (in form order) -> v3 variant id}; absent = does not exist.
MATRICES = {
    206: {("1", "3"): 509, ("2", "3"): 510, ("1", "4"): 511, ("2", "4"): 512},
    167: {("7",): 301, ("8",): 302},
}
ATTRIBUTES = {206: ("attribute[114]", "attribute[115]"), 167: ("attribute[201]",)}
# Stock the theme shows in .form-field--stock, per v3 variant.
STOCK = {509: 12, 510: 0, 511: 0, 512: 3, 301: 0, 302: 5}

STYLE = """<style>
  body { margin: 0; font: 15px/1.6 Karla, Arial, sans-serif; color: #4f4f4f; }
  .header { text-align: center; padding: 22px 0 16px; border-bottom: 1px solid #e5e5e5;
            font: 700 24px/1 Montserrat, Arial, sans-serif; color: #222; letter-spacing: .04em; }
  .productView { display: grid; grid-template-columns: 1fr 1fr; gap: 40px; max-width: 1000px;
                 margin: 20px auto 30px; }
  .productView-images { grid-row: span 2; }
  .productView-image { aspect-ratio: 4 / 3; background: linear-gradient(150deg, #f2efe9, #e2dccf); }
  .productView-title { font: 700 26px/1.2 Montserrat, Arial, sans-serif; color: #222;
                       margin: 0 0 8px; }
  .price { font-size: 20px; color: #222; margin-bottom: 14px; }
  .form-label { display: block; font-weight: 700; color: #222; margin-bottom: 4px; }
  .form-field { border: 0; padding: 0; margin: 0 0 12px; }
  .form-select { padding: 6px; min-width: 10em; }
  .form-radio { position: absolute; opacity: 0; }
  .form-option { display: inline-block; padding: 4px 14px; margin: 0 6px 6px 0;
                 border: 1px solid #ccc; cursor: pointer; }
  .form-radio:checked + .form-option { border-color: #222; box-shadow: inset 0 0 0 1px #222; }
  .form-radio:focus-visible + .form-option { outline: 2px solid #3c64f4; }
  .form-field--stock .form-label--alternate { font-weight: 400; }
  .form-input { width: 4em; padding: 6px; border: 1px solid #ccc; }
  .productAttributes-message { color: #a40e26; margin: 6px 0; }
  .button--primary { display: block; width: 100%; margin-top: 10px; padding: 12px; border: 0;
    background: #444; color: #fff; font-weight: 700; letter-spacing: .1em;
    text-transform: uppercase; }
  .share { margin-top: 16px; font-size: 13px; color: #757575; }
  .productView-description { max-width: 1000px; margin: 0 auto 40px; }
  .card { display: inline-block; width: 220px; margin-right: 16px; border: 1px solid #e5e5e5;
          padding: 12px; vertical-align: top; }
  #modal { display: none; position: fixed; inset: 40px 60px auto; background: #fff;
           border: 1px solid #ccc; box-shadow: 0 10px 40px rgba(0,0,0,.3); max-height: 85vh;
           overflow: auto; }
  #modal.open { display: block; }
  #modal .productView { margin: 20px; }
  .cart { width: 100%; border-collapse: collapse; }
  .cart td, .cart th { border-bottom: 1px solid #e5e5e5; padding: 8px; text-align: left; }
  .page { max-width: 1000px; margin: 20px auto; }
  @media (max-width: 700px) {
    .productView { grid-template-columns: 1fr; gap: 12px; margin: 12px 16px 24px; }
    .productView-description, .page { margin-left: 16px; margin-right: 16px; }
  }
</style>"""


def options_html(product_id: int, selected: tuple[str, ...]) -> str:
    if product_id == 206:
        size, colour = selected
        sizes = "".join(
            f'<option value="{value}"{" selected" if value == size else ""}>{name}</option>'
            for value, name in (("1", "Small"), ("2", "Large"))
        )
        pills = "".join(
            f'<input class="form-radio" type="radio" id="attribute_rectangle_115_{value}"'
            f' name="attribute[115]" value="{value}"{" checked" if value == colour else ""}>'
            f'<label class="form-option" for="attribute_rectangle_115_{value}"'
            f' data-product-attribute-value="{value}">{name}</label>'
            for value, name in (("3", "Red"), ("4", "Blue"), ("5", "Green"))
        )
        return f"""
        <div class="form-field" data-product-attribute="set-select">
          <label class="form-label" for="attribute_select_114">Size:</label>
          <select class="form-select" id="attribute_select_114"
                  name="attribute[114]">{sizes}</select>
        </div>
        <div class="form-field" data-product-attribute="set-rectangle" role="radiogroup"
             aria-labelledby="colour-label">
          <label class="form-label" id="colour-label">Colour:</label>{pills}
        </div>"""
    (size,) = selected
    pills = "".join(
        f'<input class="form-radio" type="radio" id="qv_attribute_201_{value}"'
        f' name="attribute[201]" value="{value}"{" checked" if value == size else ""}>'
        f'<label class="form-option" for="qv_attribute_201_{value}"'
        f' data-product-attribute-value="{value}">{name}</label>'
        for value, name in (("7", "S"), ("8", "L"))
    )
    return f"""
        <div class="form-field" data-product-attribute="set-rectangle" role="radiogroup">
          <label class="form-label">Size:</label>{pills}
        </div>"""


def product_view(product_id: int, title: str, selected: tuple[str, ...]) -> str:
    variant = MATRICES[product_id].get(selected)
    stock = STOCK.get(variant, 0)
    return f"""<div class="productView" data-entity-id="{product_id}">
  <section class="productView-images"><div class="productView-image" role="img"
    aria-label="{html.escape(title)}"></div></section>
  <section class="productView-details product-data">
    <h1 class="productView-title">{html.escape(title)}</h1>
    <div class="price">$29.00</div>
  </section>
  <section class="productView-details product-options">
    <div class="productView-options">
      <form class="form" method="post" action="/cart.php" enctype="multipart/form-data"
            data-cart-item-add>
        <input type="hidden" name="action" value="add">
        <input type="hidden" name="product_id" value="{product_id}">
        <div data-product-option-change style="display:none;">{options_html(product_id, selected)}
        </div>
        <div class="form-field form-field--stock">
          <label class="form-label form-label--alternate">
            <span class="productView-stock-message"><span data-product-stock>{stock}</span>
              in stock</span>
          </label>
        </div>
        <div id="add-to-cart-wrapper" class="add-to-cart-wrapper">
          <div class="form-field form-field--increments">
            <label class="form-label form-label--alternate" for="qty-{product_id}">Quantity:</label>
            <input class="form-input form-input--incrementTotal" id="qty-{product_id}"
                   name="qty[]" type="tel" value="1" min="1" pattern="[0-9]*">
          </div>
          <div class="alertBox productAttributes-message" style="display:none"></div>
          <div class="form-action">
            <input id="form-action-addToCart" class="button button--primary" type="submit"
                   value="Add to Cart">
          </div>
        </div>
      </form>
    </div>
    <div class="share">Share: Facebook · Email · Print · Pinterest</div>
  </section>
</div>"""


# The theme: jQuery's event model and Cornerstone's product details, quick view and cart.
THEME_JS = """
(function () {
  var registry = new WeakMap();
  function handlers(el, type) {
    var byType = registry.get(el);
    return byType && byType[type] || [];
  }
  // jQuery .on(): its own list per element, fed by ONE native listener.
  function on(el, type, fn) {
    var byType = registry.get(el) || {};
    registry.set(el, byType);
    if (!byType[type]) {
      byType[type] = [];
      el.addEventListener(type, function (event) {
        handlers(el, type).forEach(function (h) { h.call(el, event); });
      });
    }
    byType[type].push(fn);
  }
  // jQuery .trigger('change'): the jQuery handlers along the ancestors; no DOM event at all.
  function trigger(target, type) {
    var event = { type: type, target: target, isTrigger: true, preventDefault: function () {} };
    for (var el = target; el; el = el.parentNode) {
      handlers(el, type).forEach(function (h) { h.call(el, event); });
    }
  }
  window.themeEvents = { on: on, trigger: trigger };

  function serialize(form) {
    var params = new URLSearchParams();
    new FormData(form).forEach(function (v, k) { params.append(k, v); });
    return params.toString();
  }
  // stencil-utils' productAttributes.optionChange.
  function optionChange(form, done) {
    var id = form.querySelector('[name="product_id"]').value;
    fetch('/remote/v1/product-attributes/' + id, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/x-www-form-urlencoded; charset=UTF-8',
        'x-xsrf-token': window.BCData.csrf_token,
        'x-requested-with': 'stencil-utils',
        'stencil-config': '{}',
        'stencil-options': '{"render_with":"products/bulk-discount-rates"}',
        'x-test-caller': 'theme'
      },
      body: serialize(form)
    }).then(function (r) { return r.json(); }).then(done);
  }
  function updateView(scope, data) {
    var stock = scope.querySelector('[data-product-stock]');
    stock.textContent = data.stock == null ? '' : data.stock;
    var message = scope.querySelector('.productAttributes-message');
    message.textContent = data.purchasing_message || '';
    message.style.display = data.purchasing_message ? '' : 'none';
    var button = scope.querySelector('#form-action-addToCart');
    button.value = !data.purchasable ? 'Unavailable'
      : data.instock ? 'Add to Cart' : 'Pre-Order Now';
    button.disabled = !data.purchasable;
  }
  function ProductDetails(scope, attributes) {
    var form = scope.querySelector('form[data-cart-item-add]');
    var options = form.querySelector('[data-product-option-change]');
    on(options, 'change', function () {
      optionChange(form, function (response) {
        updateView(scope, response.data);
        document.dispatchEvent(new CustomEvent('onProductOptionsChanged', {
          bubbles: true, detail: { content: response.content, data: response.data }
        }));
      });
    });
    optionChange(form, function (response) { updateView(scope, response.data); });  // no event
    if (attributes) { updateView(scope, attributes); }
    // Arrow keys on pills: Cornerstone moves the choice itself and triggers jQuery's change.
    on(options, 'keydown', function (event) {
      var radio = event.target;
      var step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[event.key];
      if (radio.type !== 'radio' || !step) { return; }
      event.preventDefault();
      var group = Array.prototype.slice.call(
        form.querySelectorAll('input[name="' + radio.name + '"]'));
      var next = group[(group.indexOf(radio) + step + group.length) % group.length];
      next.checked = true;
      next.focus();
      trigger(next, 'change');
    });
    options.style.display = '';
  }
  var main = document.querySelector('.productView');
  if (main && window.BCData.product_attributes) {
    ProductDetails(main, window.BCData.product_attributes);
  }

  // Quick view: the product's quick-view template, inserted into #modal-content after load.
  document.addEventListener('click', function (event) {
    var link = event.target.closest('.quickview');
    if (!link) { return; }
    event.preventDefault();
    var modal = document.getElementById('modal');
    modal.classList.add('open');
    fetch('/products/quick-view/' + link.dataset.productId).then(function (r) { return r.text(); })
      .then(function (markup) {
        var content = document.getElementById('modal-content');
        content.innerHTML = markup;
        ProductDetails(content.querySelector('.quickView'));
      });
  });

  // Cart: removing a line re-renders [data-cart-content] from the server.
  document.addEventListener('click', function (event) {
    var remove = event.target.closest('.cart-remove');
    if (!remove) { return; }
    event.preventDefault();
    fetch('/cart/remove/' + remove.dataset.cartItemid, { method: 'POST' })
      .then(function () { return fetch('/cart/content'); })
      .then(function (r) { return r.text(); })
      .then(function (markup) {
        document.querySelector('[data-cart-content]').innerHTML = markup;
        document.querySelector('.cart-quantity').textContent =
          document.querySelector('.cart').dataset.cartQuantity;
      });
  });
})();
"""

PRODUCT_PAGE = """<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<title>Tee - Fjord &amp; Fell</title>{style}
<script>window.BCData = {bcdata};</script></head><body>
<header class="header">FJORD &amp; FELL</header>
<main>{view}
<div class="productView-description"><h2>Description</h2><p>A soft cotton tee, cut for
everyday wear. Machine washable.</p>
<h2>Related products</h2>
<div class="card"><strong>Sweater</strong><br>
  <a href="/sweater/" class="quickview button" data-product-id="167">Quick view</a></div>
</div></main>
<div id="modal" role="dialog" aria-label="Quick view"><div id="modal-content"></div></div>
<script>{theme}</script>
<script async src="{app}/static/badge-widget-bc.js?store={store}"></script>
</body></html>"""

CART_PAGE = """<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<title>Your cart</title>{style}
<script>window.BCData = {{"csrf_token": "{csrf}"}};</script></head><body>
<header class="header">FJORD &amp; FELL</header>
<div class="page"><div class="page-content" data-cart>
  <h1 class="page-heading">Your Cart (<span class="cart-quantity">{quantity}</span> items)</h1>
  <div data-cart-status></div>
  <div data-cart-content>{content}</div>
  <div data-cart-totals><p>Subtotal: $116.00</p></div>
  <div class="cart-actions"><a class="button button--primary" href="/checkout">Check out</a></div>
</div></div>
<script>{theme}</script>
<script async src="{app}/static/badge-widget-bc.js?store={store}"></script>
</body></html>"""


def cart_content(lines: list[dict]) -> str:
    def options(line: dict) -> str:
        return "".join(
            f"<dt>{html.escape(o['name'])}:</dt><dd>{html.escape(o['value'])}</dd>"
            for o in line["options"]
        )

    rows = "".join(
        f"""<tr class="cart-item" data-item-row>
      <td class="cart-item-block cart-item-title">
        <h2 class="cart-item-name">{html.escape(line["name"])}</h2>
        <dl class="cart-item-options">{options(line)}</dl></td>
      <td class="cart-item-block cart-item-quantity">{line["quantity"]}</td>
      <td><a href="#" class="cart-remove" data-cart-itemid="{line["id"]}">Remove</a></td>
    </tr>"""
        for line in lines
    )
    quantity = sum(line["quantity"] for line in lines)
    return f"""<table class="cart" data-cart-quantity="{quantity}">
  <thead><tr><th>Item</th><th>Quantity</th><th></th></tr></thead>
  <tbody class="cart-list">{rows}</tbody></table>"""


def cart_line(line_id: str, product: int, variant: int, name: str, quantity: int, options):
    return {
        "id": line_id,
        "productId": product,
        "variantId": variant,
        "name": name,
        "quantity": quantity,
        "options": [{"name": n, "value": v} for n, v in options],
    }


class CornerstoneStore(BaseHTTPRequestHandler):
    app_url = ""
    option_posts: list = []  # (path, form, headers)
    cart_lines: list = []

    def log_message(self, *args):
        pass

    def _send(self, status: int, body: str, content_type: str) -> None:
        raw = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(raw)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self):
        url = urlsplit(self.path)
        lang = parse_qs(url.query).get("lang", ["en"])[0]
        fields = {"app": self.app_url, "store": STORE, "style": STYLE, "theme": THEME_JS}
        fields["lang"] = html.escape(lang)
        if url.path == "/tee/":
            attributes = {"v3_variant_id": 509, "stock": 12, "instock": True, "purchasable": True}
            bcdata = {"csrf_token": CSRF_TOKEN, "product_attributes": attributes}
            view = product_view(206, "Tee", ("1", "3"))
            page = PRODUCT_PAGE.format(bcdata=json.dumps(bcdata), view=view, **fields)
            self._send(200, page, "text/html; charset=utf-8")
        elif url.path == "/products/quick-view/167":
            view = product_view(167, "Sweater", ("7",))
            self._send(200, f'<div class="modal-body quickView">{view}</div>', "text/html")
        elif url.path == "/cart.php":
            page = CART_PAGE.format(
                csrf=CSRF_TOKEN,
                content=cart_content(self.cart_lines),
                quantity=sum(line["quantity"] for line in self.cart_lines),
                **fields,
            )
            self._send(200, page, "text/html; charset=utf-8")
        elif url.path == "/cart/content":
            self._send(200, cart_content(self.cart_lines), "text/html")
        elif url.path == "/api/storefront/carts":
            # The lines' options come only when asked for, as the Storefront Cart API does it.
            asked = parse_qs(url.query).get("include", [""])[0].split(",")
            lines = [
                line
                if "lineItems.physicalItems.options" in asked
                else {k: v for k, v in line.items() if k != "options"}
                for line in self.cart_lines
            ]
            cart = {"id": "c1", "lineItems": {"physicalItems": lines}}
            self._send(200, json.dumps([cart] if self.cart_lines else []), "application/json")
        else:
            self._send(404, "not found", "text/plain")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        url = urlsplit(self.path)
        if url.path.startswith("/cart/remove/"):
            line_id = url.path.rsplit("/", 1)[1]
            self.cart_lines[:] = [line for line in self.cart_lines if line["id"] != line_id]
            self._send(200, "{}", "application/json")
            return
        form = parse_qs(body)
        self.option_posts.append((url.path, form, dict(self.headers.items())))
        product_id = int(url.path.rsplit("/", 1)[1])
        key = tuple(form.get(name, [""])[0] for name in ATTRIBUTES[product_id])
        variant = MATRICES[product_id].get(key)
        if variant is None:  # a combination that does not exist
            data = {
                "v3_variant_id": None,
                "purchasable": False,
                "instock": False,
                "stock": None,
                "purchasing_message": "The selected product combination is currently unavailable.",
            }
        else:
            stock = STOCK[variant]
            data = {
                "v3_variant_id": variant,
                "variantId": variant + 90000,  # the other id: never the badge's
                "stock": stock,
                "instock": stock > 0,
                "purchasable": True,
            }
        self._send(200, json.dumps({"data": data, "content": None}), "application/json")


@contextmanager
def cornerstone_servers(app) -> Iterator[tuple[str, type[CornerstoneStore], list[str]]]:
    """The app and the Cornerstone-like store on loopback (different ports: cross-origin):
    (store URL, the store's handler class, the badge API query strings asked)."""
    badge_requests: list[str] = []

    def counting(environ, start_response):
        if environ["PATH_INFO"].startswith("/storefront/v1/badges"):
            badge_requests.append(environ.get("QUERY_STRING", ""))
        return app.wsgi_app(environ, start_response)

    app_server = make_server("127.0.0.1", 0, counting, threaded=True)
    app_url = f"http://127.0.0.1:{app_server.server_port}"
    handler = type(
        "Store", (CornerstoneStore,), {"app_url": app_url, "option_posts": [], "cart_lines": []}
    )
    store_server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threads = [
        threading.Thread(target=app_server.serve_forever, daemon=True),
        threading.Thread(target=store_server.serve_forever, daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        yield f"http://127.0.0.1:{store_server.server_address[1]}", handler, badge_requests
    finally:
        app_server.shutdown()
        store_server.shutdown()
        store_server.server_close()
