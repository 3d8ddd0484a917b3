"""The support desk, in each of the three shells: one view per page, three doors.

Support staff open it from the sandbox, from BigCommerce's control panel (the app token in the
URL, as every BigCommerce page) or from the Shopify admin (a session token in the URL or in the
posted form). `desk_route` registers a view once per shell; the view gets a `Desk`: the shop
(only ever the one the credentials are for), who the staff member is, and the links of this
shell. Each feature lives in its own module (desk_search, desk_customer, desk_variant,
desk_kpis), imported at the bottom so their routes exist.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps

from flask import Blueprint, current_app, render_template, request, url_for
from flask_babel import gettext as _

from connectors.shopify import oauth as shopify_oauth
from connectors.shopify.session_token import InvalidSessionToken, verify
from plugin import i18n
from plugin.extensions import db
from plugin.models import InstallStatus, Platform, Shop
from plugin.services import bigcommerce_install as installs
from plugin.services import bigcommerce_session as app_tokens
from plugin.services import sandbox_store
from plugin.services.shops import find_shop

bp = Blueprint("desk", __name__)

PREFIXES = {
    "sandbox": "/sandbox/desk",
    "bigcommerce": "/bigcommerce/app/<store_hash>/desk",
    "shopify": "/shopify/app/desk",
}


class DeskRefused(Exception):
    """The request may not see this desk (or a feature refuses an action): its status and why."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class Desk:
    """What a desk view works with: the shop, the staff member, and this shell's links."""

    shell: str  # sandbox | bigcommerce | shopify
    shop: Shop
    # Who acts, as recorded in timelines: "sandbox", "bigcommerce:<user id>", "shopify:<sub>".
    staff_user: str
    # The credential every link and form of this shell carries: {"token": ...} on BigCommerce,
    # {"id_token": ..., "shop": ...} on Shopify, nothing in the sandbox.
    carry: dict[str, str] = field(default_factory=dict)
    # For the Shopify shell's page chrome.
    shell_context: dict = field(default_factory=dict)

    def url(self, view: str, **args) -> str:
        """A desk view's URL in this shell, e.g. desk.url("customer", email=...)."""
        path_args = {"store_hash": self.shop.domain} if self.shell == "bigcommerce" else {}
        return url_for(f"desk.{self.shell}_{view}", **path_args, **args, **self.carry)

    def action(self, view: str, **args) -> str:
        """Where a form posts: the credential travels in the form's hidden fields instead."""
        path_args = {"store_hash": self.shop.domain} if self.shell == "bigcommerce" else {}
        return url_for(f"desk.{self.shell}_{view}", **path_args, **args)

    @property
    def hidden_fields(self) -> dict[str, str]:
        """Hidden fields every desk form carries (the credential; on Shopify the page's script
        replaces the token with a fresh one from App Bridge when it can)."""
        return dict(self.carry)

    @property
    def layout(self) -> str:
        return f"desk/_{self.shell}.html"


def render(desk: Desk, template: str, status: int = 200, **context):
    """A desk page in this shell's chrome."""
    page = {"shop": desk.shop, **desk.shell_context, **context}
    return render_template(template, desk=desk, layout=desk.layout, **page), status


# -- the three doors -----------------------------------------------------------------------------


def _sandbox(_kwargs: dict) -> Desk:
    shop = sandbox_store.ensure_shop(db.session)
    db.session.commit()
    return Desk("sandbox", shop, "sandbox")


def _bigcommerce(kwargs: dict) -> Desk:
    store_hash = kwargs.pop("store_hash")
    header = request.headers.get("Authorization") or ""
    token = (
        header[7:].strip()
        if header.lower().startswith("bearer ")
        else (request.form.get("token") or request.args.get("token") or "").strip()
    )
    settings = current_app.extensions["settings"]
    try:
        identity = app_tokens.read(settings.secret_key, token)
    except app_tokens.AppTokenRefused as exc:
        raise DeskRefused(str(exc), 401) from exc
    i18n.use_platform_locale(identity.locale)
    if identity.store_hash != store_hash:
        raise DeskRefused(_("This app token is for another store."), 403)
    shop = installs.find_store(db.session, store_hash)
    if shop is None or not installs.user_belongs(db.session, shop, identity.user_id):
        raise DeskRefused(_("You do not have access to Backorder Badges on this store."), 403)
    return Desk(
        "bigcommerce",
        shop,
        f"bigcommerce:{identity.user_id}",
        carry={"token": token},
        shell_context={"token": token, "nav": _bigcommerce_nav(shop, token)},
    )


def _bigcommerce_nav(shop: Shop, token: str) -> dict[str, str]:
    from plugin.blueprints.bigcommerce import _nav

    return _nav(shop, token)


def _shopify(_kwargs: dict) -> Desk:
    settings = current_app.extensions["settings"]
    raw = (request.form.get("id_token") or request.args.get("id_token") or "").strip()
    header = request.headers.get("Authorization") or ""
    if not raw and header.lower().startswith("bearer "):
        raw = header[7:].strip()
    try:
        token = verify(raw, settings.shopify_client_id, settings.shopify_client_secret)
    except InvalidSessionToken as exc:
        raise DeskRefused(
            _("%(problem)s. Open Backorder Badges again from your Shopify admin.", problem=exc),
            401,
        ) from exc
    named = request.values.get("shop")
    if named and (not shopify_oauth.is_shop_domain(named) or named != token.shop):
        raise DeskRefused(_("The session is for another shop."), 401)
    shop = find_shop(db.session, Platform.SHOPIFY, token.shop)
    if shop is None or shop.status == InstallStatus.UNINSTALLED:
        raise DeskRefused(_("Open Backorder Badges from your Shopify admin."), 401)
    from plugin.blueprints import shopify_admin

    shopify_admin.remember_shop(shop.domain)
    carry = {"shop": shop.domain, "id_token": token.raw}
    if request.args.get("locale"):
        carry["locale"] = request.args["locale"]
    pages_context = shopify_admin._page_context(shop, token, request.endpoint or "", None, None)
    return Desk(
        "shopify",
        shop,
        f"shopify:{token.user_id or 'unknown'}",
        carry=carry,
        shell_context=pages_context,
    )


DOORS: dict[str, Callable[[dict], Desk]] = {
    "sandbox": _sandbox,
    "bigcommerce": _bigcommerce,
    "shopify": _shopify,
}


def desk_route(rule: str, methods: tuple[str, ...] = ("GET",)):
    """Register `view(desk, **kwargs)` at `rule` under each shell's desk prefix, as the endpoint
    `desk.<shell>_<view name>`."""

    def register(view: Callable) -> Callable:
        for shell, prefix in PREFIXES.items():
            bp.add_url_rule(
                prefix + rule,
                f"{shell}_{view.__name__}",
                _through(shell, view),
                methods=list(methods),
            )
        return view

    return register


def _through(shell: str, view: Callable) -> Callable:
    @wraps(view)
    def opened(**kwargs):
        try:
            desk = DOORS[shell](kwargs)
        except DeskRefused as exc:
            return render_template("desk/refused.html", message=exc.message), exc.status
        try:
            return view(desk, **kwargs)
        except DeskRefused as exc:
            db.session.rollback()
            return render(desk, "desk/refused_in_shell.html", exc.status, message=exc.message)

    opened.__name__ = f"{shell}_{view.__name__}"
    return opened


def add_headers(response):
    """Desk pages carry the shell's framing rules: Shopify's per-shop frame-ancestors, and
    BigCommerce's control-panel headers."""
    if request.path.startswith("/shopify/"):
        from plugin.blueprints.shopify_admin import add_frame_ancestors

        return add_frame_ancestors(response)
    if request.path.startswith("/bigcommerce/"):
        from plugin.blueprints.bigcommerce import _embedded_headers

        return _embedded_headers(response)
    return response


bp.after_request(add_headers)


# The features register their views on import.
from plugin.blueprints import desk_customer, desk_kpis, desk_search, desk_variant  # noqa: E402,F401
