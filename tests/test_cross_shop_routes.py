"""Every route of the app, knocked on with shop A's credentials and shop B's ids: nothing of B
is read or changed.

Shop B (one per platform) holds data marked with MARK in every text a page could show (product
and variant titles, badge labels, shop name, subscriber and buyer emails, privacy reports, mail
wording, sent mails). Each probe uses A's credentials (a Shopify session token, a BigCommerce app
token, the sandbox's own store, a storefront `shop`, a webhook signed for A) with B's ids in the
URL, the query or the body, and asserts the status a refusal gets, that no answer shows MARK,
and that every row of every table belonging to a B shop is as it was.

ROUTES classifies every endpoint of `app.url_map`: its probes, or why it holds no shop data. A
new route that is not classified here fails `test_every_route_is_classified`.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import responses
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from plugin.extensions import db
from plugin.models import (
    Base,
    DataRequestReport,
    InstallStatus,
    MailStatus,
    MailTemplate,
    OutboxMail,
    Platform,
    SandboxOrder,
    Shop,
    Variant,
    utcnow,
)
from plugin.services import (
    bigcommerce_session,
    customer_links,
    mail_templates,
    sandbox_store,
    variant_csv,
)
from tests import factories
from tests.bc_callback_helpers import FakeStore, load_jwt
from tests.bigcommerce_support import signed as bc_signed
from tests.bigcommerce_support import webhook_payload as bc_webhook_payload
from tests.helpers import post_sandbox_webhook
from tests.shopify_install_helpers import session_token, signed_admin_query
from tests.shopify_webhook_helpers import post_webhook as post_shopify_webhook
from webhooks import shopify_app_proxy

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

MARK = "zqvictimzq"  # in every text of a B shop a page could show; never in A's
SHOPIFY_A, SHOPIFY_B = "attacker-a.myshopify.com", "victim-b.myshopify.com"
BC_A, BC_B = "atka1", "vicb2"
BC_OWNER_A, BC_OWNER_B = 7, 8
SANDBOX_B = "victim-b.sandbox.local"
SETTINGS = {
    "enabled": True,
    "label_in_stock": "In stock",
    "label_backorder": "Ships by {eta}",
    "label_out_of_stock": "Sold out",
    "color_in_stock": "#1a7f37",
    "color_backorder": "#9a6700",
    "color_out_of_stock": "#cf222e",
    "default_lead_days": 10,
}


# -- the two shops per platform ------------------------------------------------------------------


@dataclass
class Victim:
    shop_id: int
    variant_id: int  # the app's id
    platform_id: str  # the store's own variant id
    product_platform_id: str
    sku: str
    location: str
    report_id: int
    line_id: int
    order_platform_id: str
    buyer_email: str
    subscription_token: str


@dataclass
class World:
    client: FlaskClient
    secret_key: str
    shopify_a: int
    bc_a: int
    sandbox_a: int
    b: dict[str, Victim] = field(default_factory=dict)  # per platform
    sandbox_b_product: int = 0  # the sandbox store's own ids (not the mirror's)
    sandbox_b_variant: int = 0
    sandbox_b_order: int = 0

    def shop(self, shop_id: int) -> Shop:
        db.session.expire_all()
        return db.session.get(Shop, shop_id)

    # Shop A's credentials.
    def bearer(self, domain: str = SHOPIFY_A) -> dict[str, str]:
        return {"Authorization": f"Bearer {session_token(domain)}"}

    def bc_token(self, store_hash: str = BC_A, user: int = BC_OWNER_A) -> str:
        return bigcommerce_session.issue(self.secret_key, store_hash, str(user))

    def b_plan(self, platform: str) -> str:
        """A CSV import plan checked and signed for shop B (as B's own page would get it)."""
        victim = self.b[platform]
        owner = self.shop(victim.shop_id)
        plan = variant_csv.check(
            db.session, owner, f"variant_id,backorder_limit\n{victim.platform_id},1\n"
        )
        db.session.rollback()
        assert plan.ok, plan.errors
        return variant_csv.sign(plan, owner, self.secret_key)


def _attacker_data(owner: Shop, tag: str) -> None:
    factories.product(
        owner,
        f"{tag}-p1",
        "Attacker tee",
        [{"platform_id": f"{tag}-v1", "sku": f"{tag}-SKU", "levels": {f"{tag}-loc": 3}}],
    )


def _victim_data(owner: Shop, tag: str) -> Victim:
    """B's data, every shown text marked; returns the ids an attacker would name."""
    owner.name = f"{MARK} shop"
    owner.storefront_origins = [f"https://{tag}.victim.example"]
    owner.settings.label_in_stock = f"{MARK} in stock"
    db.session.commit()
    eta = factories.today_plus(20)
    product = factories.product(
        owner,
        f"{tag}-p9",
        f"{MARK} product",
        [
            {
                "platform_id": f"{tag}-v9",
                "sku": f"{tag}-SKU9",
                "title": f"{MARK} variant",
                "backorder_limit": 5,
                "eta_override": eta,
                "lead_days_override": 7,
                "levels": {f"{tag}-loc9": 0},
                "badge": ("backorder", f"{MARK} ships soon", eta),
            }
        ],
    )
    variant = product.variants[0]
    subscription = factories.notify_subscription(variant, f"{MARK}@victim.example")
    buyer = f"buyer-{MARK}@victim.example"
    line = factories.backorder_line(variant, f"{tag}-o9", email=buyer)
    report = DataRequestReport(
        shop_id=owner.id, customer_email=buyer, order_ids=[f"{tag}-o9"], report={"note": MARK}
    )
    db.session.add(report)
    db.session.add(
        MailTemplate(
            shop_id=owner.id,
            kind=mail_templates.KINDS[0],
            locale="en",
            subject=f"{MARK} subject",
            body=f"{MARK} body",
        )
    )
    db.session.add(
        OutboxMail(
            shop_id=owner.id,
            kind=mail_templates.KINDS[0],
            recipient=buyer,
            subject=f"{MARK} mail",
            text_body=MARK,
            html_body=MARK,
            idempotency_key=f"{tag}-sent",
            status=MailStatus.SENT,
            sent_at=utcnow(),
        )
    )
    # A mail whose quiet period is over: only B's own sending (or the clock) may send it.
    db.session.add(
        OutboxMail(
            shop_id=owner.id,
            kind=mail_templates.KINDS[0],
            recipient=buyer,
            subject=f"{MARK} due",
            text_body=MARK,
            html_body=MARK,
            idempotency_key=f"{tag}-due",
            send_after=utcnow(),
        )
    )
    db.session.commit()
    return Victim(
        shop_id=owner.id,
        variant_id=variant.id,
        platform_id=variant.platform_id,
        product_platform_id=product.platform_id,
        sku=variant.sku,
        location=f"{tag}-loc9",
        report_id=report.id,
        line_id=line.id,
        order_platform_id=f"{tag}-o9",
        buyer_email=buyer,
        subscription_token=subscription.token,
    )


@pytest.fixture
def world(app, client, monkeypatch) -> World:
    # Real platforms are not reachable from tests: pushes are only recorded as scheduled.
    monkeypatch.setattr("plugin.jobs.schedule_push", lambda shop_id: None)
    monkeypatch.setattr(
        "plugin.services.storefront_config.schedule_storefront_push",
        lambda shop_id: None,
        raising=False,
    )
    shopify_a = factories.shopify_shop(SHOPIFY_A)
    shopify_b = factories.shopify_shop(SHOPIFY_B)
    bc_a = factories.bigcommerce_store(BC_A, webhook_secret="hook-secret-a", owner=BC_OWNER_A)
    bc_b = factories.bigcommerce_store(BC_B, webhook_secret="hook-secret-b", owner=BC_OWNER_B)
    sandbox_a = sandbox_store.ensure_shop(db.session)
    db.session.commit()
    factories.sandbox_product(sandbox_a, "Attacker tee", [("S", "SBA-S", 2, "deny")])
    sandbox_b = factories.shop(SANDBOX_B, Platform.SANDBOX)
    made = factories.sandbox_product(sandbox_b, f"{MARK} tee", [(f"{MARK} M", "SBB-M", 1, "deny")])
    order, hooks = factories.sandbox_order(sandbox_b, made.variants[0].id, 1, "b@victim.example")
    assert sandbox_store.deliver(sandbox_b, hooks) == [200] * len(hooks)

    w = World(
        client=client,
        secret_key=app.config["SECRET_KEY"],
        shopify_a=shopify_a.id,
        bc_a=bc_a.id,
        sandbox_a=sandbox_a.id,
        sandbox_b_product=made.id,
        sandbox_b_variant=made.variants[0].id,
        sandbox_b_order=order.id,
    )
    _attacker_data(shopify_a, "sa")
    _attacker_data(bc_a, "ba")
    w.b["shopify"] = _victim_data(shopify_b, "sb")
    w.b["bigcommerce"] = _victim_data(bc_b, "bb")
    w.b["sandbox"] = _victim_data(sandbox_b, "xb")
    return w


def snapshot(shop_ids: Iterable[int]) -> dict[str, list[tuple]]:
    """Every row of every table that belongs to these shops, as stored right now."""
    ids = list(shop_ids)
    db.session.rollback()
    rows: dict[str, list[tuple]] = {}
    for table in Base.metadata.sorted_tables:
        if "shop_id" in table.c:
            where = table.c.shop_id.in_(ids)
        elif table.name == "shops":
            where = table.c.id.in_(ids)
        else:
            continue  # webhook_attempts: per event, and events are per shop
        query = select(table).where(where).order_by(*table.primary_key.columns)
        rows[table.name] = [tuple(r) for r in db.session.execute(query)]
    return rows


def expect(response: TestResponse, *statuses: int) -> TestResponse:
    assert response.status_code in statuses, (
        f"{response.request.method} {response.request.path} answered {response.status_code}: "
        + response.get_data(as_text=True)[:400]
    )
    return response


# -- probes, per endpoint ------------------------------------------------------------------------

Probe = Callable[[World], Iterable[TestResponse] | TestResponse]
PROBES: dict[str, dict[str, Probe]] = {}


def probe(endpoint: str, name: str):
    def register(fn: Probe) -> Probe:
        PROBES.setdefault(endpoint, {})[name] = fn
        return fn

    return register


# Shopify's embedded API: A's session token, B's ids.


def sget(w: World, url: str, *statuses: int) -> TestResponse:
    return expect(w.client.get(url, headers=w.bearer()), *statuses)


def spost(w: World, url: str, *statuses: int, **kwargs) -> TestResponse:
    return expect(w.client.post(url, headers=w.bearer(), **kwargs), *statuses)


@probe("shopify_admin.get_settings", "lists_only_own_variants")
def _(w):
    return sget(w, "/shopify/api/settings", 200)


@probe("shopify_admin.save_settings", "b_variant_keys_in_body")
def _(w):
    b = w.b["shopify"]
    body = {**SETTINGS, f"variant-{b.variant_id}-limit": "1", f"variant-{b.variant_id}-eta": ""}
    return spost(w, "/shopify/api/settings", 200, json=body)


@probe("shopify_admin.save_settings", "b_location")
def _(w):
    body = {**SETTINGS, "location": [w.b["shopify"].location]}
    answer = spost(w, "/shopify/api/settings", 422, json=body)
    assert "location" in answer.json["errors"]
    return answer


@probe("shopify_admin.get_waitlist", "own_waitlist_only")
def _(w):
    return sget(w, "/shopify/api/waitlist", 200)


@probe("shopify_admin.get_waitlist_csv", "own_signups_only")
def _(w):
    return sget(w, "/shopify/api/waitlist.csv?all=1", 200)


@probe("shopify_admin.get_support", "own_reports_only")
def _(w):
    return sget(w, "/shopify/api/support", 200)


@probe("shopify_admin.get_data_request", "b_report_id")
def _(w):
    return sget(w, f"/shopify/api/data-requests/{w.b['shopify'].report_id}", 404)


@probe("shopify_admin.get_mail_template", "kind_b_customised")
def _(w):
    answer = sget(w, f"/shopify/api/mail-templates?kind={mail_templates.KINDS[0]}&language=en", 200)
    assert answer.json["default"] is True
    return answer


def _template_form(**more) -> dict:
    return {"kind": mail_templates.KINDS[0], "language": "en", **more}


@probe("shopify_admin.save_mail_template", "kind_b_customised")
def _(w):
    form = _template_form(subject="Your order", body="Thanks for waiting.")
    return spost(w, "/shopify/api/mail-templates", 200, 422, json=form)


@probe("shopify_admin.preview_mail_template", "kind_b_customised")
def _(w):
    form = _template_form(subject="Your order", body="Thanks for waiting.")
    return spost(w, "/shopify/api/mail-templates/preview", 200, 422, json=form)


@probe("shopify_admin.restore_mail_template", "kind_b_customised")
def _(w):
    return spost(w, "/shopify/api/mail-templates/restore", 200, json=_template_form())


@probe("shopify_admin.get_variant_csv", "own_variants_only")
def _(w):
    return sget(w, "/shopify/api/variants.csv", 200)


@probe("shopify_admin.check_variant_csv", "b_variant_id_and_sku")
def _(w):
    b = w.b["shopify"]
    text = f"variant_id,sku,backorder_limit\n{b.platform_id},,1\n,{b.sku},2\n"
    answer = spost(w, "/shopify/api/variants/import/check", 422, json={"csv": text})
    assert [e["line"] for e in answer.json["errors"]] == [2, 3]
    return answer


@probe("shopify_admin.apply_variant_csv", "b_signed_plan")
def _(w):
    return spost(w, "/shopify/api/variants/import/apply", 400, json={"plan": w.b_plan("shopify")})


@probe("shopify_admin.get_variants", "b_sku_searched")
def _(w):
    answer = sget(w, f"/shopify/api/variants?q={w.b['shopify'].sku}", 200)
    assert answer.json["total"] == 0
    return [answer, sget(w, "/shopify/api/variants?has_eta=1&waiting=1", 200)]


@probe("shopify_admin.save_variants", "b_variant_id")
def _(w):
    rows = [{"id": w.b["shopify"].variant_id, "limit": 1, "eta": None, "lead": None}]
    answer = spost(w, "/shopify/api/variants", 422, json={"rows": rows})
    assert answer.json["errors"][0]["message"] == "No such variant in this store."
    return answer


@probe("shopify_admin.bulk_edit_variants", "b_variant_ids")
def _(w):
    body = {"ids": [w.b["shopify"].variant_id], "set": {"limit": 1}, "clear": ["eta", "lead"]}
    answer = spost(w, "/shopify/api/variants/bulk", 200, json=body)
    assert answer.json["matched"] == 0
    return answer


@probe("shopify_admin.bulk_edit_variants", "filter_naming_b_sku")
def _(w):
    body = {"filter": {"q": w.b["shopify"].sku}, "clear": ["eta", "lead", "limit"]}
    answer = spost(w, "/shopify/api/variants/bulk", 200, json=body)
    assert answer.json["matched"] == 0
    return answer


@probe("shopify_admin.get_overview", "own_store_only")
def _(w):
    return sget(w, "/shopify/api/overview", 200)


# The embedded pages: opened with the admin's `id_token`, for the shop it names only.
SHOPIFY_PAGES = {
    "shopify_admin.app_home": "/shopify/app",
    "shopify_admin.variants_page": "/shopify/app/variants",
    "shopify_admin.settings_page": "/shopify/app/settings",
    "shopify_admin.emails_page": "/shopify/app/emails",
    "shopify_admin.support_page": "/shopify/app/support",
}


def _shopify_page(path: str, shop: str | None, statuses: tuple[int, ...], signed=False) -> Probe:
    def run(w: World):
        args = {"shop": shop} if shop else {}
        if signed:
            query = signed_admin_query(SHOPIFY_B)  # Shopify's own link to B, without a token
        else:
            query = urlencode({**args, "id_token": session_token(SHOPIFY_A)})
        return expect(w.client.get(f"{path}?{query}"), *statuses)

    return run


for _endpoint, _path in SHOPIFY_PAGES.items():
    probe(_endpoint, "a_session_token_for_b_shop")(_shopify_page(_path, SHOPIFY_B, (401,)))
    probe(_endpoint, "own_page_only")(_shopify_page(_path, None, (200,)))
    probe(_endpoint, "b_shop_signed_without_token")(_shopify_page(_path, None, (200,), True))


# Shopify's install: a signed query is for one shop; its OAuth state works for that shop only.


@probe("shopify_install.install", "signed_for_a_goes_to_a")
def _(w):
    answer = expect(w.client.get(f"/shopify/install?{signed_admin_query(SHOPIFY_A)}"), 302)
    assert urlsplit(answer.headers["Location"]).hostname == SHOPIFY_A
    return answer


@probe("shopify_install.auth_callback", "a_state_for_b_callback")
def _(w):
    started = expect(w.client.get(f"/shopify/install?{signed_admin_query(SHOPIFY_A)}"), 302)
    state = parse_qs(urlsplit(started.headers["Location"]).query)["state"][0]
    cookie = started.headers["Set-Cookie"].split(";", 1)[0]
    query = signed_admin_query(SHOPIFY_B, code="stolen-code", state=state)
    with responses.RequestsMock(assert_all_requests_are_fired=False):  # nothing may be called
        answer = w.client.get(f"/shopify/auth/callback?{query}", headers={"Cookie": cookie})
    return expect(answer, 403)


# BigCommerce's control-panel pages: A's app token on B's store, and on A's store with B's ids.

BC_PAGES = {
    "bigcommerce.app_settings": ("GET", "POST", ""),
    "bigcommerce.app_emails": ("GET", "POST", "/emails"),
    "bigcommerce.app_overview": ("GET", None, "/overview"),
    "bigcommerce.app_support": ("GET", None, "/support"),
    "bigcommerce.app_status": ("GET", None, "/status.json"),
    "bigcommerce.app_variants": ("GET", "POST", "/variants"),
    "bigcommerce.app_variants_bulk": (None, "POST", "/variants/bulk"),
    "bigcommerce.waitlist_csv": ("GET", None, "/waitlist.csv"),
    "bigcommerce.variant_csv_export": ("GET", None, "/variants.csv"),
    "bigcommerce.variant_csv_import": ("GET", "POST", "/variants/import"),
    "bigcommerce.variant_csv_apply": (None, "POST", "/variants/import/apply"),
    "bigcommerce.data_request": ("GET", None, "/data-requests/{report}.json"),
}


def _bc_on_b_store(get: str | None, post: str | None, suffix: str) -> Probe:
    def run(w: World):
        path = f"/bigcommerce/app/{BC_B}" + suffix.format(report=w.b["bigcommerce"].report_id)
        token = w.bc_token()
        answers = []
        if get:
            answers.append(expect(w.client.get(f"{path}?token={token}"), 403))
            headers = {"Authorization": f"Bearer {token}"}
            answers.append(expect(w.client.get(path, headers=headers), 403))
        if post:
            form = {"token": token, f"variant-{w.b['bigcommerce'].variant_id}-limit": "1"}
            answers.append(expect(w.client.post(path, data=form), 403))
        return answers

    return run


for _endpoint, (_get, _post, _suffix) in BC_PAGES.items():
    probe(_endpoint, "a_token_on_b_store")(_bc_on_b_store(_get, _post, _suffix))


def bc_url(w: World, suffix: str = "", **args) -> str:
    return f"/bigcommerce/app/{BC_A}{suffix}?" + urlencode({"token": w.bc_token(), **args})


@probe("bigcommerce.app_settings", "b_location_and_variant_keys_on_own_store")
def _(w):
    b = w.b["bigcommerce"]
    form = {
        **{k: str(v) for k, v in SETTINGS.items()},
        "enabled": "on",
        "locations_shown": "1",
        "location": b.location,
        f"variant-{b.variant_id}-limit": "1",
    }
    answer = expect(w.client.post(bc_url(w), data=form), 422)
    return [answer, expect(w.client.get(bc_url(w)), 200)]


@probe("bigcommerce.app_emails", "kind_b_customised_on_own_store")
def _(w):
    form = _template_form(subject="Your order", body="Thanks.", action="save")
    answers = [expect(w.client.post(bc_url(w, "/emails"), data=form), 302, 422)]
    answers.append(expect(w.client.get(bc_url(w, "/emails", kind=form["kind"])), 200))
    return answers


@probe("bigcommerce.app_overview", "own_store_only")
def _(w):
    return expect(w.client.get(bc_url(w, "/overview")), 200)


@probe("bigcommerce.app_support", "own_store_only")
def _(w):
    return expect(w.client.get(bc_url(w, "/support")), 200)


@probe("bigcommerce.app_status", "own_store_only")
def _(w):
    return expect(w.client.get(bc_url(w, "/status.json")), 200)


@probe("bigcommerce.app_variants", "b_ids_on_own_store")
def _(w):
    b = w.b["bigcommerce"]
    listing = expect(w.client.get(bc_url(w, "/variants", q=b.sku)), 200)
    form = {"token": w.bc_token(), f"variant-{b.variant_id}-limit": "1"}
    saved = expect(w.client.post(f"/bigcommerce/app/{BC_A}/variants", data=form), 422)
    assert "not in this store" in saved.get_data(as_text=True)
    return [listing, saved]


@probe("bigcommerce.app_variants_bulk", "b_ids_on_own_store")
def _(w):
    b = w.b["bigcommerce"]
    form = {
        "token": w.bc_token(),
        "scope": "selected",
        "selected": str(b.variant_id),
        "field": "limit",
        "action": "clear",
    }
    answer = expect(w.client.post(f"/bigcommerce/app/{BC_A}/variants/bulk", data=form), 302, 422)
    return [answer, expect(w.client.get(answer.headers.get("Location") or bc_url(w)), 200)]


@probe("bigcommerce.waitlist_csv", "own_signups_only")
def _(w):
    return expect(w.client.get(bc_url(w, "/waitlist.csv", all="1")), 200)


@probe("bigcommerce.variant_csv_export", "own_variants_only")
def _(w):
    return expect(w.client.get(bc_url(w, "/variants.csv")), 200)


def _csv_upload(text: str, **form) -> dict:
    return {"file": (io.BytesIO(text.encode()), "variants.csv"), **form}


@probe("bigcommerce.variant_csv_import", "b_ids_in_file_on_own_store")
def _(w):
    b = w.b["bigcommerce"]
    text = f"variant_id,sku,backorder_limit\n{b.platform_id},,1\n,{b.sku},2\n"
    answer = w.client.post(
        f"/bigcommerce/app/{BC_A}/variants/import",
        data=_csv_upload(text, token=w.bc_token()),
        content_type="multipart/form-data",
    )
    return expect(answer, 422)


@probe("bigcommerce.variant_csv_apply", "b_signed_plan_on_own_store")
def _(w):
    form = {"token": w.bc_token(), "plan": w.b_plan("bigcommerce")}
    return expect(w.client.post(f"/bigcommerce/app/{BC_A}/variants/import/apply", data=form), 400)


@probe("bigcommerce.data_request", "b_report_id_on_own_store")
def _(w):
    report = w.b["bigcommerce"].report_id
    return expect(w.client.get(bc_url(w, f"/data-requests/{report}.json")), 404)


# BigCommerce's callbacks: a payload signed for store A acts on store A only.


@probe("bigcommerce.load", "a_payload_opens_a_only")
def _(w):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeStore(BC_A).install(rsps)
        opened = w.client.get(
            "/bigcommerce/load", query_string={"signed_payload_jwt": load_jwt(BC_A, BC_OWNER_A)}
        )
    expect(opened, 302)
    location = urlsplit(opened.headers["Location"])
    assert location.path == f"/bigcommerce/app/{BC_A}"
    token = parse_qs(location.query)["token"][0]
    return [opened, expect(w.client.get(f"/bigcommerce/app/{BC_B}?token={token}"), 403)]


@probe("bigcommerce.uninstall", "a_payload_uninstalls_a_only")
def _(w):
    with responses.RequestsMock(assert_all_requests_are_fired=False):
        answer = w.client.get(
            "/bigcommerce/uninstall",
            query_string={"signed_payload_jwt": load_jwt(BC_A, BC_OWNER_A)},
        )
    expect(answer, 200)
    assert w.shop(w.bc_a).status == InstallStatus.UNINSTALLED  # the probe did reach the action
    return answer


@probe("bigcommerce.remove_user", "a_payload_naming_b_owner")
def _(w):
    payload = load_jwt(BC_A, BC_OWNER_B, "b-owner@example.com", owner_id=BC_OWNER_A)
    answer = w.client.get("/bigcommerce/remove_user", query_string={"signed_payload_jwt": payload})
    return expect(answer, 200)


# Storefront and public endpoints: A's `shop` with B's ids.


@probe("storefront.badges", "b_variant_and_product_ids")
def _(w):
    b = w.b["shopify"]
    by_variant = expect(
        w.client.get(f"/storefront/v1/badges?shop={SHOPIFY_A}&variants={b.platform_id}"), 200
    )
    assert by_variant.json["variants"][b.platform_id]["state"] is None
    by_product = expect(
        w.client.get(f"/storefront/v1/badges?shop={SHOPIFY_A}&product={b.product_platform_id}"),
        200,
    )
    assert by_product.json["variants"] == {}
    return [by_variant, by_product]


def _origin_b() -> str:
    return "https://bb.victim.example"  # BigCommerce store B's storefront


@probe("notify.preflight", "b_storefront_origin")
def _(w):
    answers = []
    for path in ("/storefront/v1/notify", "/storefront/v1/notify/form"):
        answer = w.client.options(f"{path}?shop={BC_A}", headers={"Origin": _origin_b()})
        assert "Access-Control-Allow-Origin" not in answer.headers
        answers.append(expect(answer, 204))
    return answers


@probe("notify.form", "own_texts_only")
def _(w):
    answer = w.client.get(
        f"/storefront/v1/notify/form?shop={BC_A}", headers={"Origin": _origin_b()}
    )
    assert "Access-Control-Allow-Origin" not in answer.headers
    return expect(answer, 200)


def _signup(variant: str, **more) -> dict:
    return {"variant": variant, "email": "eve@example.com", "consent": True, "locale": "en", **more}


@probe("notify.sign_up", "b_variant_id")
def _(w):
    b = w.b["bigcommerce"]
    answer = w.client.post(f"/storefront/v1/notify?shop={BC_A}", json=_signup(b.platform_id))
    return expect(answer, 404)


@probe("notify.sign_up", "b_storefront_origin")
def _(w):
    answer = w.client.post(
        f"/storefront/v1/notify?shop={BC_A}",
        json=_signup("ba-v1"),
        headers={"Origin": _origin_b()},
    )
    return expect(answer, 403)


def _proxy_query(shop: str) -> str:
    pairs = [
        ("shop", shop),
        ("logged_in_customer_id", ""),
        ("path_prefix", "/apps/backorder-badges"),
        ("timestamp", str(int(time.time()))),
    ]
    pairs.append(("signature", shopify_app_proxy.sign(pairs, "shopify-client-secret")))
    return urlencode(pairs)


@probe("notify_proxy.proxy_form", "signed_for_a")
def _(w):
    return expect(w.client.get(f"/proxy/shopify/notify/form?{_proxy_query(SHOPIFY_A)}"), 200)


@probe("notify_proxy.proxy_sign_up", "b_variant_id_and_b_shop_in_body")
def _(w):
    body = _signup(w.b["shopify"].platform_id, shop=SHOPIFY_B, form="shopify_block")
    answer = w.client.post(f"/proxy/shopify/notify?{_proxy_query(SHOPIFY_A)}", json=body)
    return expect(answer, 404)


# The links in mails: the signed (orders) or random (notify-me) token is the only key; a token
# forged for B's line, or guessed, opens and changes nothing.


def _forged_cancel(w: World) -> str:
    return customer_links.cancel_token("not-the-app-secret", w.b["shopify"].line_id)


def _forged_consent(w: World) -> str:
    return customer_links.consent_token("not-the-app-secret", w.b["shopify"].line_id, 1)


@probe("customer_orders.cancel_form", "forged_for_b_line")
def _(w):
    return expect(w.client.get(f"/orders/cancel/{_forged_cancel(w)}"), 404)


@probe("customer_orders.cancel", "forged_for_b_line")
def _(w):
    return expect(
        w.client.post(f"/orders/cancel/{_forged_cancel(w)}", data={"scope": "order"}), 404
    )


@probe("customer_orders.consent_form", "forged_for_b_line")
def _(w):
    return expect(w.client.get(f"/orders/wait/{_forged_consent(w)}"), 404)


@probe("customer_orders.consent", "forged_for_b_line")
def _(w):
    return expect(w.client.post(f"/orders/wait/{_forged_consent(w)}"), 404)


GUESSED = "A" * 43  # the shape of a real subscription token


@probe("notify.confirm_page", "guessed_token")
def _(w):
    return expect(w.client.get(f"/notify/confirm/{GUESSED}"), 404)


@probe("notify.confirm", "guessed_token")
def _(w):
    return expect(w.client.post(f"/notify/confirm/{GUESSED}"), 404)


@probe("notify.unsubscribe_page", "guessed_token")
def _(w):
    return expect(w.client.get(f"/notify/unsubscribe/{GUESSED}"), 404)


@probe("notify.unsubscribe", "guessed_token")
def _(w):
    answer = w.client.post(f"/notify/unsubscribe/{GUESSED}", data={"List-Unsubscribe": "One-Click"})
    return expect(answer, 404)


# Webhooks: a delivery for A naming B's ids changes nothing of B's.


@probe("webhooks.receive", "sandbox_a_names_b_variant")
def _(w):
    payload = {"variant_id": w.sandbox_b_variant, "location_id": "default", "available": 0}
    return expect(post_sandbox_webhook(w.client, "inventory_levels/update", payload), 200)


def _b_order_hook(topic: str) -> Probe:
    """B's own sandbox order, as B's store sends it, but delivered signed for the sandbox store."""

    def run(w: World):
        order = db.session.get(SandboxOrder, w.sandbox_b_order)
        payload = sandbox_store.order_payload(order)
        if topic == "orders/cancelled":
            payload |= {"cancelled_at": utcnow().isoformat(), "cancel_reason": "customer"}
        if topic == "refunds/create":
            payload = sandbox_store.refund_payload(order, 1, utcnow())
        return expect(post_sandbox_webhook(w.client, topic, payload), 200)

    return run


for _topic in ("orders/create", "orders/updated", "orders/cancelled", "refunds/create"):
    _name = "sandbox_a_delivers_b_" + _topic.replace("/", "_")
    probe("webhooks.receive", _name)(_b_order_hook(_topic))


def _shopify_compliance(body: dict, topic: str, w: World) -> TestResponse:
    with responses.RequestsMock(assert_all_requests_are_fired=False):
        return expect(post_shopify_webhook(w.client, topic, body, shop=SHOPIFY_A), 200)


@probe("webhooks.receive", "shopify_a_redacts_b_customer")
def _(w):
    b = w.b["shopify"]
    body = {
        "shop_id": 954889,
        "shop_domain": SHOPIFY_B,
        "customer": {"id": 191167, "email": b.buyer_email, "phone": "555-625-1199"},
        "orders_to_redact": [b.order_platform_id],
    }
    return _shopify_compliance(body, "customers/redact", w)


@probe("webhooks.receive", "shopify_a_data_request_for_b_customer")
def _(w):
    b = w.b["shopify"]
    body = {
        "shop_id": 954889,
        "shop_domain": SHOPIFY_B,
        "orders_requested": [b.order_platform_id],
        "customer": {"id": 191167, "email": b.buyer_email, "phone": "555-625-1199"},
        "data_request": {"id": 9999},
    }
    answer = _shopify_compliance(body, "customers/data_request", w)
    db.session.expire_all()
    (report,) = db.session.scalars(
        select(DataRequestReport).where(DataRequestReport.shop_id == w.shopify_a)
    ).all()
    # A's report names the customer A asked about, and holds nothing of B's about them.
    held = {k: v for k, v in report.report.items() if k not in ("shop", "customer_email")}
    assert MARK not in json.dumps(held), held
    return answer


@probe("webhooks.receive", "shopify_a_shop_redact_naming_b")
def _(w):
    return _shopify_compliance({"shop_id": 954889, "shop_domain": SHOPIFY_B}, "shop/redact", w)


@probe("webhooks.receive", "shopify_a_uninstalled_naming_b")
def _(w):
    body = {"id": 548380009, "domain": SHOPIFY_B, "myshopify_domain": SHOPIFY_B}
    return _shopify_compliance(body, "app/uninstalled", w)


@probe("webhooks.receive", "bigcommerce_a_secret_b_producer")
def _(w):
    payload = bc_webhook_payload("store-product-updated", store=BC_B)
    body, headers = bc_signed(payload, secret_header="hook-secret-a")
    with responses.RequestsMock(assert_all_requests_are_fired=False):
        answer = w.client.post("/webhooks/bigcommerce", data=body, headers=headers)
    return expect(answer, 401, 403)


# The sandbox: one local store, which still refuses every other shop's ids.


def sb_post(w: World, url: str, data: dict | None = None, *statuses: int) -> TestResponse:
    return expect(w.client.post(url, data=data or {}), *(statuses or (302,)))


def _flashed_error(w: World, answer: TestResponse, what: str) -> TestResponse:
    """The page the refusal redirects to, which says why."""
    page = expect(w.client.get(answer.headers["Location"]), 200)
    assert f"No such {what} in this store." in page.get_data(as_text=True)
    return page


@probe("sandbox.admin", "own_store_only")
def _(w):
    return expect(w.client.get("/sandbox/"), 200)


@probe("sandbox.waitlist_csv", "own_signups_only")
def _(w):
    return expect(w.client.get("/sandbox/waitlist.csv?all=1"), 200)


@probe("sandbox.create_product", "creates_in_own_store")
def _(w):
    return sb_post(w, "/sandbox/products", {"title": "New", "variants": "One, NEW-1, 1, deny"})


@probe("sandbox.add_variant", "b_product_id")
def _(w):
    form = {"title": "Extra", "sku": "X-1", "inventory": "3", "policy": "deny"}
    answer = sb_post(w, f"/sandbox/products/{w.sandbox_b_product}/variants", form)
    return [answer, _flashed_error(w, answer, "product")]


@probe("sandbox.set_inventory", "b_variant_id")
def _(w):
    answer = sb_post(w, f"/sandbox/variants/{w.sandbox_b_variant}/inventory", {"inventory": "0"})
    return [answer, _flashed_error(w, answer, "variant")]


@probe("sandbox.receive_stock", "b_variant_id")
def _(w):
    answer = sb_post(w, f"/sandbox/variants/{w.sandbox_b_variant}/receive", {"units": "5"})
    return [answer, _flashed_error(w, answer, "variant")]


@probe("sandbox.place_order", "b_variant_id")
def _(w):
    form = {"variant_id": str(w.sandbox_b_variant), "quantity": "1", "email": "e@example.com"}
    answer = sb_post(w, "/sandbox/orders", form)
    return [answer, _flashed_error(w, answer, "variant")]


def _order_action(action: str, form: dict) -> Probe:
    def run(w: World):
        answer = sb_post(w, f"/sandbox/orders/{w.sandbox_b_order}/{action}", form)
        return [answer, _flashed_error(w, answer, "order")]

    return run


probe("sandbox.cancel_order", "b_order_id")(_order_action("cancel", {}))
probe("sandbox.edit_order", "b_order_id")(_order_action("quantity", {"quantity": "0"}))
probe("sandbox.refund_order", "b_order_id")(_order_action("refund", {"units": "1"}))
probe("sandbox.ship_order", "b_order_id")(_order_action("ship", {"units": "1"}))


@probe("sandbox.settings", "b_variant_keys")
def _(w):
    b = w.b["sandbox"]
    form = {
        **{k: str(v) for k, v in SETTINGS.items()},
        "enabled": "on",
        f"variant-{b.variant_id}-limit": "1",
        f"variant-{b.variant_id}-eta": "",
    }
    return [sb_post(w, "/sandbox/settings", form), expect(w.client.get("/sandbox/settings"), 200)]


@probe("sandbox.emails", "kind_b_customised")
def _(w):
    form = _template_form(subject="Your order", body="Thanks.", action="save")
    answer = sb_post(w, "/sandbox/emails", form, 302, 422)
    return [answer, expect(w.client.get(f"/sandbox/emails?kind={form['kind']}"), 200)]


@probe("sandbox.outbox", "own_mails_only")
def _(w):
    return expect(w.client.get("/sandbox/outbox"), 200)


@probe("sandbox.send_due", "b_has_a_mail_due")
def _(w):
    """The sandbox's "send what is due" runs the clock for the sandbox store, not for others."""
    return sb_post(w, "/sandbox/outbox/send-due")


@probe("sandbox.checkout", "b_variant_id")
def _(w):
    query = {"variant_id": str(w.sandbox_b_variant), "quantity": "1"}
    return expect(w.client.get("/sandbox/checkout", query_string=query), 404)


@probe("sandbox.product_page", "b_product_id")
def _(w):
    return expect(w.client.get(f"/sandbox/products/{w.sandbox_b_product}"), 404)


@probe("sandbox.variant_csv_export", "own_variants_only")
def _(w):
    return expect(w.client.get("/sandbox/variants.csv"), 200)


@probe("sandbox.variant_csv_import", "b_ids_in_file")
def _(w):
    b = w.b["sandbox"]
    text = f"variant_id,sku,backorder_limit\n{b.platform_id},,1\n,{b.sku},2\n"
    answer = w.client.post(
        "/sandbox/variants/import", data=_csv_upload(text), content_type="multipart/form-data"
    )
    return [expect(answer, 422), expect(w.client.get("/sandbox/variants/import"), 200)]


@probe("sandbox.variant_csv_apply", "b_signed_plan")
def _(w):
    return sb_post(w, "/sandbox/variants/import/apply", {"plan": w.b_plan("sandbox")}, 400)


@probe("sandbox.variants", "b_variant_id")
def _(w):
    b = w.b["sandbox"]
    listing = expect(w.client.get(f"/sandbox/variants?q={b.sku}"), 200)
    saved = sb_post(w, "/sandbox/variants", {f"variant-{b.variant_id}-limit": "1"}, 422)
    assert "not in this store" in saved.get_data(as_text=True)
    return [listing, saved]


@probe("sandbox.variants_bulk", "b_variant_id")
def _(w):
    form = {
        "scope": "selected",
        "selected": str(w.b["sandbox"].variant_id),
        "field": "limit",
        "action": "clear",
    }
    answer = sb_post(w, "/sandbox/variants/bulk", form, 302, 422)
    return [answer, expect(w.client.get("/sandbox/variants"), 200)]


@probe("sandbox.overview", "own_store_only")
def _(w):
    return expect(w.client.get("/sandbox/overview"), 200)


# The support desk's KPIs (page and CSV exports): B's owed lines and sign-ups never counted.

KPI_CSVS = ("summary", "owed_by_product", "owed_by_option", "notify_demand")


def _kpis_in(w: World, shell: str) -> list[TestResponse]:
    paths = ["/kpis?period=90"] + [f"/kpis/{name}.csv?period=90" for name in KPI_CSVS]
    if shell == "sandbox":
        return [expect(w.client.get(f"/sandbox/desk{path}"), 200) for path in paths]
    answers = []
    for path in paths:
        if shell == "bigcommerce":
            mine = f"/bigcommerce/app/{BC_A}/desk{path}&token={w.bc_token()}"
            answers.append(expect(w.client.get(mine), 200))
            theirs = f"/bigcommerce/app/{BC_B}/desk{path}&token={w.bc_token()}"
            answers.append(expect(w.client.get(theirs), 403))
        else:
            token = session_token(SHOPIFY_A)
            answers.append(expect(w.client.get(f"/shopify/app/desk{path}&id_token={token}"), 200))
            theirs = f"/shopify/app/desk{path}&id_token={token}&shop={SHOPIFY_B}"
            answers.append(expect(w.client.get(theirs), 401))
    return answers


for _shell in ("sandbox", "bigcommerce", "shopify"):
    for _view in ("kpis", "kpis_csv"):
        probe(f"desk.{_shell}_{_view}", "own_store_only_and_b_store_refused")(
            lambda w, shell=_shell: _kpis_in(w, shell)
        )


# The support desk's variant page and its "heal now": B's variant id is not found with A's
# credentials (nothing read, nothing healed), and A's credentials on B's store are refused.


def _desk_variant_of_b(w: World, shell: str) -> list[TestResponse]:
    b = w.b[shell]
    page, heal = f"/variants/{b.variant_id}", f"/variants/{b.variant_id}/heal"
    if shell == "sandbox":
        return [
            expect(w.client.get(f"/sandbox/desk{page}"), 404),
            expect(w.client.post(f"/sandbox/desk{heal}"), 404),
        ]
    if shell == "bigcommerce":
        token = w.bc_token()
        return [
            expect(w.client.get(f"/bigcommerce/app/{BC_A}/desk{page}?token={token}"), 404),
            expect(
                w.client.post(f"/bigcommerce/app/{BC_A}/desk{heal}", data={"token": token}), 404
            ),
            expect(w.client.get(f"/bigcommerce/app/{BC_B}/desk{page}?token={token}"), 403),
            expect(
                w.client.post(f"/bigcommerce/app/{BC_B}/desk{heal}", data={"token": token}), 403
            ),
        ]
    token = session_token(SHOPIFY_A)
    return [
        expect(w.client.get(f"/shopify/app/desk{page}?id_token={token}"), 404),
        expect(w.client.post(f"/shopify/app/desk{heal}", data={"id_token": token}), 404),
        expect(w.client.get(f"/shopify/app/desk{page}?id_token={token}&shop={SHOPIFY_B}"), 401),
        expect(
            w.client.post(f"/shopify/app/desk{heal}", data={"id_token": token, "shop": SHOPIFY_B}),
            401,
        ),
    ]


for _shell in ("sandbox", "bigcommerce", "shopify"):
    for _view in ("variant", "heal"):
        probe(f"desk.{_shell}_{_view}", "b_variant_id_not_found")(
            lambda w, shell=_shell: _desk_variant_of_b(w, shell)
        )


# The support desk's search and customer page: B's order number, buyer, SKU and product name
# find nothing with A's credentials; B's customer, mail and line ids are not found (nothing
# resent, re-dated, cancelled or noted); A's credentials on B's store are refused.

DESK_TAGS = {"shopify": "sb", "bigcommerce": "bb", "sandbox": "xb"}


def _desk(w: World, shell: str, method: str, path: str, status: int, on_b=False, **form):
    """One desk request in `shell` with A's credentials (on B's store with `on_b`)."""
    if shell == "sandbox":
        url, carry = f"/sandbox/desk{path}", {}
    elif shell == "bigcommerce":
        url, carry = (
            f"/bigcommerce/app/{BC_B if on_b else BC_A}/desk{path}",
            {"token": w.bc_token()},
        )
    else:
        carry = {"id_token": session_token(SHOPIFY_A), **({"shop": SHOPIFY_B} if on_b else {})}
        url = f"/shopify/app/desk{path}"
    if method == "GET":
        return expect(w.client.get(url, query_string={**form, **carry}), status)
    return expect(w.client.post(url, data={**form, **carry}), status)


def _desk_search_for_b(w: World, shell: str) -> list[TestResponse]:
    b = w.b[shell]
    # The page repeats the query, so B's keys are typed short of the MARK they carry.
    keys = [b.order_platform_id, f"#{b.order_platform_id}", "buyer-zqvict", b.sku, MARK[1:-1]]
    answers = [_desk(w, shell, "GET", "", 200, q=key) for key in keys]
    for answer in answers:
        assert "Nothing in this shop matches" in answer.get_data(as_text=True)
    if shell != "sandbox":
        refused = 403 if shell == "bigcommerce" else 401
        answers.append(_desk(w, shell, "GET", "", refused, on_b=True, q="buyer-zqvict"))
    return answers


def _desk_customer_of_b(w: World, shell: str) -> list[TestResponse]:
    b = w.b[shell]
    db.session.rollback()
    mail_id = db.session.scalar(
        select(OutboxMail.id).where(OutboxMail.idempotency_key == f"{DESK_TAGS[shell]}-sent")
    )
    email = b.buyer_email
    answers = [
        _desk(w, shell, "GET", "/customer", 404, email=email),
        _desk(w, shell, "GET", "/customer/mail", 404, email=email, mail_id=mail_id),
        _desk(w, shell, "POST", "/customer/resend", 404, email=email, mail_id=mail_id),
        _desk(
            w,
            shell,
            "POST",
            "/customer/eta",
            404,
            email=email,
            line_id=b.line_id,
            eta="2099-01-01",
            reason="x",
        ),
        _desk(w, shell, "POST", "/customer/cancel", 404, email=email, line_id=b.line_id),
        _desk(w, shell, "POST", "/customer/note", 404, email=email, text="x"),
    ]
    if shell != "sandbox":
        refused = 403 if shell == "bigcommerce" else 401
        answers += [
            _desk(w, shell, "GET", "/customer", refused, on_b=True, email=email),
            _desk(w, shell, "POST", "/customer/note", refused, on_b=True, email=email, text="x"),
        ]
    return answers


for _shell in ("sandbox", "bigcommerce", "shopify"):
    probe(f"desk.{_shell}_home", "b_keys_find_nothing")(
        lambda w, shell=_shell: _desk_search_for_b(w, shell)
    )
    for _view in (
        "customer",
        "customer_mail",
        "customer_resend",
        "customer_eta",
        "customer_cancel",
        "customer_note",
    ):
        probe(f"desk.{_shell}_{_view}", "b_customer_not_found")(
            lambda w, shell=_shell: _desk_customer_of_b(w, shell)
        )


# -- the table -----------------------------------------------------------------------------------

NO_SHOP_DATA = {
    "static": "files shipped with the app (scripts, styles); the same for every shop",
    "health.healthz": "says whether the database and queue answer; names no shop",
    "health.index": "the public landing page (or a redirect to the sandbox); reads no shop",
    "health.install_shopify": "redirects to Shopify's own install page for the typed store; "
    "reads and writes nothing here",
    "bigcommerce.auth_callback": "the store is the one BigCommerce's token endpoint answers for "
    "its one-time code (the grant's context); no id in the request selects a stored store",
}
ROUTES: dict[str, dict[str, Probe] | str] = {**PROBES, **NO_SHOP_DATA}
CASES = [(endpoint, name) for endpoint, probes in PROBES.items() for name in probes]


def test_every_route_is_classified(app):
    """A new route fails here until it gets probes above (or a reason it holds no shop data)."""
    assert not set(PROBES) & set(NO_SHOP_DATA)
    routes = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert routes - set(ROUTES) == set(), "routes with no cross-shop check"
    assert set(ROUTES) - routes == set(), "checks for routes that no longer exist"


@pytest.mark.parametrize(("endpoint", "name"), CASES, ids=[f"{e}:{n}" for e, n in CASES])
def test_shop_a_cannot_read_or_change_shop_b(world, endpoint, name):
    victims = [b.shop_id for b in world.b.values()]
    before = snapshot(victims)
    assert all(before[t] for t in ("variants", "notify_subscriptions", "backorder_lines"))

    answers = PROBES[endpoint][name](world)
    answers = [answers] if isinstance(answers, TestResponse) else list(answers)

    for answer in answers:
        body = answer.get_data(as_text=True)
        assert MARK not in body, f"{answer.request.path} shows shop B's data"
        assert MARK not in answer.headers.get("Location", "")
    assert snapshot(victims) == before, "shop B's rows changed"


# -- the controls: the marks are visible to B's own credentials, so a leak would show ------------


def test_shop_bs_own_credentials_do_see_its_marked_data(world):
    b = world.b["shopify"]
    client = world.client
    views = [
        client.get("/shopify/api/variants", headers=world.bearer(SHOPIFY_B)),
        client.get("/shopify/api/waitlist.csv?all=1", headers=world.bearer(SHOPIFY_B)),
        client.get(f"/shopify/api/data-requests/{b.report_id}", headers=world.bearer(SHOPIFY_B)),
        client.get(f"/storefront/v1/badges?shop={SHOPIFY_B}&variants={b.platform_id}"),
        client.get(f"/bigcommerce/app/{BC_B}/variants?token={world.bc_token(BC_B, BC_OWNER_B)}"),
        client.get(f"/bigcommerce/app/{BC_B}/support?token={world.bc_token(BC_B, BC_OWNER_B)}"),
        client.get(f"/shopify/app/settings?id_token={session_token(SHOPIFY_B)}"),
    ]
    for view in views:
        assert view.status_code == 200 and MARK in view.get_data(as_text=True), view.request.path


def test_the_snapshot_sees_a_change_to_shop_b(world):
    victims = [b.shop_id for b in world.b.values()]
    before = snapshot(victims)
    variant = db.session.get(Variant, world.b["bigcommerce"].variant_id)
    variant.backorder_limit = 6
    db.session.commit()
    assert snapshot(victims) != before
