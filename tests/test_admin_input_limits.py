"""Hostile input on the merchant's pages: refused with a message next to the field (or a 4xx
naming the field), never a 500, and nothing stored. Badge labels take only the placeholders the
badge engine fills in."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import responses
from sqlalchemy import func, select

from plugin.extensions import db
from plugin.models import SandboxOrder, SandboxProduct, SandboxVariant, Variant, WebhookEvent
from plugin.services import sandbox_store, settings_form
from plugin.services.shop_time import shop_today
from tests import factories
from tests.shopify_install_helpers import session_token

SHOP = "limits-shop.myshopify.com"
HOSTILE = [
    str(10**30),
    str(-(10**30)),
    "1e309",
    "NaN",
    "",
    "  7 ",
    "9999-12-31",
    "9" * 5000,
    "x" * 100_000,
    "1_000",
    "٣",  # an Arabic-Indic three: int() would take it
]
IDS = ["1e30", "-1e30", "1e309", "NaN", "empty", "spaced-7", "9999-12-31", "5000-nines",
       "100k-chars", "underscore", "arabic-digit"]  # fmt: skip


# -- the sandbox store's own forms ---------------------------------------------------------------


def _store():
    """The sandbox store with one product, one order of 2 units (on backorder), 5 received."""
    shop = factories.shop()
    product = factories.sandbox_product(shop, "Tee", [("Medium", "TEE-M", 0, "continue")])
    variant_id = product.variants[0].id
    order, hooks = factories.sandbox_order(shop, variant_id, 2)
    sandbox_store.deliver(shop, hooks)
    hooks = sandbox_store.receive_stock(db.session, shop, variant_id, 5)
    db.session.commit()
    sandbox_store.deliver(shop, hooks)
    return variant_id, order.id


def _store_state():
    db.session.expire_all()
    return (
        [(v.id, v.title, v.inventory, v.policy) for v in db.session.scalars(
            select(SandboxVariant).order_by(SandboxVariant.id))],
        db.session.scalar(select(func.count()).select_from(SandboxProduct)),
        [(o.id, o.quantity, o.current_quantity, o.shipped_quantity, o.refunded_quantity)
         for o in db.session.scalars(select(SandboxOrder).order_by(SandboxOrder.id))],
        db.session.scalar(select(func.count()).select_from(WebhookEvent)),
    )  # fmt: skip


# (what the merchant does, path, the form with {v} where the hostile value goes)
STORE_FORMS = {
    "new product stock": ("/sandbox/products", {"title": "Cap", "variants": "One, CAP, {v}, deny"}),
    "new variant stock": (
        "/sandbox/products/{product}/variants",
        {"title": "Large", "sku": "TEE-L", "inventory": "{v}", "policy": "deny"},
    ),
    "set stock": ("/sandbox/variants/{variant}/inventory", {"inventory": "{v}"}),
    "receive units": ("/sandbox/variants/{variant}/receive", {"units": "{v}"}),
    "order quantity": (
        "/sandbox/orders",
        {"variant_id": "{variant}", "quantity": "{v}", "email": "a@example.com"},
    ),
    "order variant": (
        "/sandbox/orders",
        {"variant_id": "{v}", "quantity": "1", "email": "a@example.com"},
    ),
    "edit quantity": ("/sandbox/orders/{order}/quantity", {"quantity": "{v}"}),
    "refund units": ("/sandbox/orders/{order}/refund", {"units": "{v}"}),
    "ship units": ("/sandbox/orders/{order}/ship", {"units": "{v}"}),
}
# The hostile values that are fine input for a form: "  7 " is 7 (on set stock, receive, an
# order or a new product: a valid action); an empty "ship units" ships everything.
STORE_ACCEPTS = {
    ("new product stock", "  7 "),
    ("new variant stock", "  7 "),
    ("set stock", "  7 "),
    ("receive units", "  7 "),
    ("order quantity", "  7 "),
    ("ship units", ""),
}


@pytest.mark.parametrize("value", HOSTILE, ids=IDS)
@pytest.mark.parametrize("action", list(STORE_FORMS))
def test_sandbox_store_refuses_hostile_numbers_with_a_message(client, action, value):
    variant_id, order_id = _store()
    product_id = db.session.get(SandboxVariant, variant_id).product_id
    path, form = STORE_FORMS[action]
    ids = {"product": product_id, "variant": variant_id, "order": order_id}
    path = path.format(**ids)
    data = {key: raw.format(v=value, **ids) for key, raw in form.items()}
    before = _store_state()

    response = client.post(path, data=data, follow_redirects=True)

    assert response.status_code == 200
    messages = re.findall(r'<div class="flash (\w+)" role="status">(.*?)</div>', response.text)
    assert len(messages) == 1, messages
    kind, message = messages[0]
    if (action, value) in STORE_ACCEPTS:
        assert kind == "ok", message
        return
    assert kind == "error", message
    assert message.endswith("."), message
    assert _store_state() == before


def test_sandbox_store_names_the_range_for_a_huge_number(client):
    variant_id, _order_id = _store()
    response = client.post(
        f"/sandbox/variants/{variant_id}/inventory",
        data={"inventory": str(10**30)},
        follow_redirects=True,
    )
    assert "Stock must be between -1,000,000 and 1,000,000; nothing changed." in response.text
    response = client.post(
        "/sandbox/products", data={"title": "Cap", "variants": f"One, CAP, {10**30}, deny"},
        follow_redirects=True,
    )  # fmt: skip
    assert "Line 1: stock must be between -1,000,000 and 1,000,000." in response.text


# -- the settings form (sandbox page) and the Shopify JSON API -----------------------------------

# Per field: the hostile values it accepts, and what the form then shows (None: as before).
SETTINGS_FIELDS = {
    "default_lead_days": {"  7 ": "7"},
    "variant-lead": {"  7 ": "7", "": ""},
    "variant-limit": {"  7 ": "7", "": ""},
    "variant-eta": {"": ""},
    "closed_dates": {"": ""},
    "email_quiet_minutes": {"  7 ": "7", "": None},
    "timezone": {},
    "email_reply_to": {"": ""},
}


def _field(name: str, variant_id: int) -> str:
    return f"variant-{variant_id}-{name[8:]}" if name.startswith("variant-") else name


@pytest.fixture
def quiet_push(app):
    """Saving re-decides the badges and pushes them to Shopify: no Shopify here, so the push
    fails fast (no network) and, as in production, a failed push does not fail the save."""
    app.config["RAISE_INLINE_JOB_ERRORS"] = False
    with responses.RequestsMock(assert_all_requests_are_fired=False):
        yield


def _settings_shop(platform: str):
    shop = factories.shopify_shop(SHOP) if platform == "shopify" else factories.shop()
    factories.product(shop, "p1", "Tee", [{"platform_id": "v1", "title": "M", "sku": "TEE-M"}])
    variant_id = db.session.scalars(select(Variant.id)).one()
    return shop, variant_id


def _saved_values(shop):
    """The saved settings, and each variant's values as the Variants page names them."""
    db.session.expire_all()
    variants = settings_form.shop_variants(db.session, shop)
    values = settings_form.form_values(shop)
    for v in variants:
        values[f"variant-{v.id}-eta"] = v.eta_override.isoformat() if v.eta_override else ""
        values[f"variant-{v.id}-lead"] = (
            "" if v.lead_days_override is None else str(v.lead_days_override)
        )
        values[f"variant-{v.id}-limit"] = (
            "" if v.backorder_limit is None else str(v.backorder_limit)
        )
    return values


def _post_settings(client, platform: str, form: dict, field: str = ""):
    """Settings go to the settings page; a per-variant value to the Variants page."""
    per_variant = re.fullmatch(r"variant-([0-9]+)-(eta|lead|limit)", field)
    headers = {"Authorization": f"Bearer {session_token(SHOP)}"}
    if per_variant and platform == "shopify":
        row = {"id": int(per_variant.group(1)), per_variant.group(2): form[field]}
        return client.post("/shopify/api/variants", json={"rows": [row]}, headers=headers)
    if per_variant:
        return client.post("/sandbox/variants", data={field: form[field]})
    if platform == "shopify":
        return client.post("/shopify/api/settings", json=form, headers=headers)
    return client.post("/sandbox/settings", data=form)


def _refused_next_to_the_field(response, platform: str, field: str) -> str:
    assert response.status_code == 422, response.status_code
    if platform == "shopify" and field.startswith("variant-"):
        assert response.json["saved"] is False
        (error,) = response.json["errors"]
        assert f"variant-{error['id']}-{error['field']}" == field
        return error["message"]
    if platform == "shopify":
        assert response.json["saved"] is False
        assert list(response.json["errors"]) == [field]
        return response.json["errors"][field]
    page = response.get_data(as_text=True)
    found = re.findall(rf'<p class="field-error" id="{re.escape(field)}-error">(.*?)</p>', page)
    assert len(found) == 1, field
    assert re.search(rf'name="{re.escape(field)}"[^>]*aria-invalid="true"', page), field
    return found[0]


@pytest.mark.parametrize("value", HOSTILE, ids=IDS)
@pytest.mark.parametrize("name", list(SETTINGS_FIELDS))
@pytest.mark.parametrize("platform", ["sandbox", "shopify"])
def test_settings_refuse_hostile_values_next_to_the_field(
    client, quiet_push, platform, name, value
):
    shop, variant_id = _settings_shop(platform)
    field = _field(name, variant_id)
    before = _saved_values(shop)

    response = _post_settings(client, platform, {**before, field: value}, field)

    assert response.status_code != 500
    after = _saved_values(shop)
    if value in SETTINGS_FIELDS[name]:
        assert response.status_code in (200, 302), response.get_data(as_text=True)[:300]
        expected = SETTINGS_FIELDS[name][value]
        assert after[field] == (before[field] if expected is None else expected)
        return
    message = _refused_next_to_the_field(response, platform, field)
    assert message
    assert after == before


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("default_lead_days", str(10**30), "Lead time must be between 0 and 365."),
        ("default_lead_days", "1e309", "Lead time must be a whole number."),
        ("variant-limit", str(-(10**30)), "Backorder limit must be between 0 and 1000000."),
        ("email_quiet_minutes", "9" * 5000, "The quiet period must be between 0 and 1440."),
        ("variant-eta", "9999-12-31", "ETA 9999-12-31 is more than 1098 days ahead."),
        ("variant-eta", "99999-01-01", "ETA '99999-01-01' is not a date like 2026-12-24."),
        (
            "closed_dates",
            "2026-12-24\n9999-12-31",
            "The closed date 9999-12-31 must be by {latest} (three years ahead).",
        ),
        ("label_in_stock", "x" * 100_000, "Keep it to 80 characters or fewer."),
        ("email_reply_to", "a" * 300 + "@example.com", "Keep it to 254 characters or fewer."),
        (
            "timezone",
            "Europe/" + "x" * 300,
            "Use a time zone name such as Europe/London or America/New_York.",
        ),
    ],
)
@pytest.mark.parametrize("platform", ["sandbox", "shopify"])
def test_out_of_range_settings_say_what_range(client, quiet_push, platform, name, value, message):
    shop, variant_id = _settings_shop(platform)
    field = _field(name, variant_id)
    before = _saved_values(shop)
    latest = (shop_today(shop.timezone) + timedelta(days=settings_form.MAX_DAYS_AHEAD)).isoformat()

    response = _post_settings(client, platform, {**before, field: value}, field)

    shown = _refused_next_to_the_field(response, platform, field)
    assert shown.replace("&#39;", "'") == message.format(latest=latest)
    assert _saved_values(shop) == before


def test_json_numbers_out_of_range_are_refused_by_name(client):
    """A JSON client sends numbers, not strings: huge, infinite or NaN ones are refused too."""
    shop, variant_id = _settings_shop("shopify")
    before = _saved_values(shop)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {session_token(SHOP)}"}
    for raw in ("1" + "0" * 30, "1e309", "NaN", "-Infinity", "[1, 2]", '{"a": 1}'):
        body = (
            '{"label_in_stock": "In stock", "label_backorder": "Ships by {eta}", '
            '"label_out_of_stock": "Sold out", "color_in_stock": "#1a7f37", '
            '"color_backorder": "#9a6700", "color_out_of_stock": "#cf222e", '
            f'"default_lead_days": {raw}, "variant-{variant_id}-limit": {raw}}}'
        )
        response = client.post("/shopify/api/settings", data=body, headers=headers)
        assert response.status_code == 422, raw
        # Per-variant keys are not settings: the settings save ignores them.
        assert set(response.json["errors"]) == {"default_lead_days"}
        rows = f'{{"rows": [{{"id": {variant_id}, "limit": {raw}}}]}}'
        response = client.post("/shopify/api/variants", data=rows, headers=headers)
        assert response.status_code == 422, raw
        assert [(e["id"], e["field"]) for e in response.json["errors"]] == [(variant_id, "limit")]
    assert _saved_values(shop) == before


# -- badge labels take only their documented placeholders ----------------------------------------


def _badges(client):
    body = client.get("/storefront/v1/badges?shop=demo.sandbox.local&product=1").json
    return {v["state"]: v["label"] for v in body["variants"].values()}


def _label_form(shop, **labels):
    values = _saved_values(shop)
    values.update(labels)
    return {k: v for k, v in values.items() if k != "location"}


ONLY_ETA = "{eta} is the only placeholder here; remove "


@pytest.mark.parametrize(
    ("name", "label", "message"),
    [
        ("label_backorder", "Ships by {eta} ({foo})", ONLY_ETA + "{foo}."),
        ("label_backorder", "Ships by {ETA}", ONLY_ETA + "{ETA}."),
        ("label_backorder", "Ships by { eta }", ONLY_ETA + "{ eta }."),
        ("label_backorder", "Ships by {eta}}", "Use braces only in {eta}."),
        ("label_backorder", "Ships by {{eta}}", "Use braces only in {eta}."),
        ("label_in_stock", "Ready {eta}", "This label takes no placeholders; remove {eta}."),
        ("label_in_stock", "Ready {", "This label takes no placeholders; remove the braces."),
        ("label_out_of_stock", "Gone {foo}", "This label takes no placeholders; remove {foo}."),
    ],
)  # fmt: skip
def test_unknown_placeholders_are_refused_next_to_the_label(client, name, label, message):
    shop = sandbox_store.ensure_shop(db.session)
    db.session.commit()
    factories.sandbox_product(
        shop, "Tee", [("M", "TEE-M", 0, "continue"), ("L", "TEE-L", 3, "deny")]
    )
    shown_before = _badges(client)

    response = client.post("/sandbox/settings", data=_label_form(shop, **{name: label}))

    assert _refused_next_to_the_field(response, "sandbox", name) == message
    assert f'value="{label}"' in response.get_data(as_text=True)  # what was typed is kept
    assert _badges(client) == shown_before  # shoppers never see the stray braces


def test_the_documented_placeholder_reaches_shoppers_as_a_date(client):
    shop = sandbox_store.ensure_shop(db.session)
    db.session.commit()
    factories.sandbox_product(shop, "Tee", [("M", "TEE-M", 0, "continue")])

    response = client.post(
        "/sandbox/settings",
        data=_label_form(shop, label_backorder="Preorder: ships by {eta}", default_lead_days="10"),
    )

    assert response.status_code == 302
    label = _badges(client)["backorder"]
    assert re.fullmatch(r"Preorder: ships by .*\d.*", label) and "{" not in label, label


def test_the_json_api_names_the_label_with_an_unknown_placeholder(client):
    shop, _variant_id = _settings_shop("shopify")
    before = _saved_values(shop)
    response = _post_settings(client, "shopify", {**before, "label_in_stock": "In stock {qty}"})
    assert response.status_code == 422
    assert response.json["errors"] == {
        "label_in_stock": "This label takes no placeholders; remove {qty}."
    }
    assert _saved_values(shop) == before


@pytest.mark.parametrize(
    "path",
    [
        f"/sandbox/variants/{10**30}/receive",
        f"/sandbox/orders/{10**30}/cancel",
        f"/sandbox/products/{10**30}/variants",
        f"/sandbox/products/{2**31}",
    ],
)
def test_huge_ids_in_urls_are_not_found_not_a_crash(client, path):
    factories.shop()
    assert client.post(path, data={"units": "1"}).status_code in (404, 405)
    assert client.get(path).status_code in (404, 405)
