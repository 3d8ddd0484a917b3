"""The email wording editor in the Shopify embedded admin: a JSON API behind a session token."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from plugin.extensions import db
from plugin.models import MailTemplate
from plugin.services.mail_templates import KINDS, LANGUAGES, VARIABLES, default_template
from tests.factories import shopify_shop
from tests.shopify_install_helpers import session_token

SHOP = "cool-shop.myshopify.com"
OTHER = "other-shop.myshopify.com"
URL = "/shopify/api/mail-templates"


def bearer(shop: str = SHOP) -> dict[str, str]:
    return {"Authorization": f"Bearer {session_token(shop)}"}


def own_templates(shop) -> list[MailTemplate]:
    db.session.expire_all()
    return list(db.session.scalars(select(MailTemplate).where(MailTemplate.shop_id == shop.id)))


def save(client, shop: str = SHOP, **fields):
    payload = {"kind": "eta_change", "language": "fr", **fields}
    return client.post(URL, json=payload, headers=bearer(shop))


def test_load_gives_the_default_wording_kinds_languages_and_variables(app, client):
    shopify_shop(SHOP)
    response = client.get(f"{URL}?kind=eta_change&language=fr", headers=bearer())
    assert response.status_code == 200
    data = response.json
    assert (data["kind"], data["language"]) == ("eta_change", "fr")
    assert (data["subject"], data["body"]) == default_template("eta_change", "fr")
    assert data["default"] is True
    assert data["errors"] == {}
    assert [k["kind"] for k in data["kinds"]] == list(KINDS)
    assert [lang["language"] for lang in data["languages"]] == list(LANGUAGES)
    assert [v["name"] for v in data["variables"]] == list(VARIABLES["eta_change"])
    assert all(v["help"] for v in data["variables"])
    assert len(data["templates"]) == len(KINDS) * len(LANGUAGES)
    assert all(t["default"] for t in data["templates"])


def test_load_refuses_an_unknown_kind_or_language(app, client):
    shopify_shop(SHOP)
    assert client.get(f"{URL}?kind=nope", headers=bearer()).status_code == 400
    assert client.get(f"{URL}?language=xx", headers=bearer()).status_code == 400


def test_save_makes_the_wording_the_merchants_own(app, client):
    shop = shopify_shop(SHOP)
    response = save(
        client, subject="Nouvelle date pour {{ order_name }}", body="Bonjour {{ customer_name }}"
    )
    assert response.status_code == 200
    assert response.json["saved"] is True
    assert response.json["template"]["default"] is False
    assert response.json["preview"]["subject"].startswith("Nouvelle date pour #")
    [row] = own_templates(shop)
    assert (row.kind, row.locale, row.subject, row.body) == (
        "eta_change",
        "fr",
        "Nouvelle date pour {{ order_name }}",
        "Bonjour {{ customer_name }}",
    )

    loaded = client.get(f"{URL}?kind=eta_change&language=fr", headers=bearer()).json
    assert loaded["subject"] == "Nouvelle date pour {{ order_name }}"
    assert loaded["default"] is False
    own = [(t["kind"], t["language"]) for t in loaded["templates"] if not t["default"]]
    assert own == [("eta_change", "fr")]
    # The other languages of that kind still use the default wording.
    english = client.get(f"{URL}?kind=eta_change&language=en", headers=bearer()).json
    assert english["default"] is True


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"body": "{{ ''.__class__ }}"}, "body", "underscore"),
        ({"subject": "{{ ''.__class__ }}"}, "subject", "underscore"),
        ({"subject": "   "}, "subject", "A subject is needed."),
        ({"body": "{% for x in lines %}"}, "body", ""),
    ],
)
def test_a_refused_template_gets_422_next_to_its_field_and_nothing_is_saved(
    app, client, fields, field, message
):
    shop = shopify_shop(SHOP)
    before = save(client, subject="Kept", body="Kept body")
    assert before.status_code == 200
    response = save(client, **{"subject": "Fine", "body": "Fine", **fields})
    assert response.status_code == 422
    assert response.json["saved"] is False
    assert list(response.json["errors"]) == [field]
    assert message in response.json["errors"][field]
    [row] = own_templates(shop)
    assert (row.subject, row.body) == ("Kept", "Kept body")


def test_preview_renders_subject_text_and_html_without_saving(app, client):
    shop = shopify_shop(SHOP)
    response = client.post(
        f"{URL}/preview",
        json={
            "kind": "backorder_confirmation",
            "language": "en",
            "subject": "About {{ order_name }}",
            "body": "Hello <b>{{ customer_name }}</b>\n\n- first\n- second",
        },
        headers=bearer(),
    )
    assert response.status_code == 200
    data = response.json
    assert data["subject"].startswith("About #")
    assert "first" in data["text"] and "<li>" not in data["text"]
    assert ">first</li>" in data["html"]
    assert "&lt;b&gt;" in data["html"]  # the merchant's text is escaped in the HTML part
    assert own_templates(shop) == []

    refused = client.post(
        f"{URL}/preview",
        json={"kind": "ships_soon", "language": "en", "subject": "x", "body": "{{ ''.__class__ }}"},
        headers=bearer(),
    )
    assert refused.status_code == 422
    assert "underscore" in refused.json["errors"]["body"]


def test_restore_default_deletes_the_merchants_wording(app, client):
    shop = shopify_shop(SHOP)
    assert save(client, subject="Mine", body="Mine too").status_code == 200
    response = client.post(
        f"{URL}/restore", json={"kind": "eta_change", "language": "fr"}, headers=bearer()
    )
    assert response.status_code == 200
    template = response.json["template"]
    assert template["default"] is True
    assert (template["subject"], template["body"]) == default_template("eta_change", "fr")
    assert own_templates(shop) == []


def test_posts_need_a_known_kind_and_language(app, client):
    shopify_shop(SHOP)
    assert save(client, kind="nope", subject="a", body="b").status_code == 400
    assert save(client, language="xx", subject="a", body="b").status_code == 400
    response = client.post(URL, data="[1]", content_type="application/json", headers=bearer())
    assert response.status_code == 400


def test_every_endpoint_needs_a_session_token(app, client):
    shopify_shop(SHOP)
    body = {"kind": "eta_change", "language": "en", "subject": "a", "body": "b"}
    assert client.get(URL).status_code == 401
    assert client.post(URL, json=body).status_code == 401
    assert client.post(f"{URL}/preview", json=body).status_code == 401
    assert client.post(f"{URL}/restore", json=body).status_code == 401
    bad = {"Authorization": f"Bearer {session_token(SHOP, secret='not-the-client-secret')}"}
    assert client.post(URL, json=body, headers=bad).status_code == 401
    assert db.session.scalar(select(func.count()).select_from(MailTemplate)) == 0


def test_another_shops_token_never_sees_or_changes_this_shops_wording(app, client):
    shop = shopify_shop(SHOP)
    other = shopify_shop(OTHER)
    assert save(client, subject="Secret wording", body="Only for cool-shop").status_code == 200

    seen = client.get(f"{URL}?kind=eta_change&language=fr", headers=bearer(OTHER)).json
    assert seen["default"] is True
    assert seen["subject"] != "Secret wording"
    assert all(t["default"] for t in seen["templates"])

    restored = client.post(
        f"{URL}/restore", json={"kind": "eta_change", "language": "fr"}, headers=bearer(OTHER)
    )
    assert restored.status_code == 200
    overwritten = save(client, OTHER, subject="Other shop's", body="Other body")
    assert overwritten.status_code == 200

    [mine] = own_templates(shop)
    assert (mine.subject, mine.body) == ("Secret wording", "Only for cool-shop")
    [theirs] = own_templates(other)
    assert theirs.subject == "Other shop's"
    mine_seen = client.get(f"{URL}?kind=eta_change&language=fr", headers=bearer()).json
    assert mine_seen["subject"] == "Secret wording"


def test_the_app_page_has_the_email_wording_section(app, client):
    shopify_shop(SHOP)
    html = client.get(f"/shopify/app/emails?shop={SHOP}&id_token={session_token(SHOP)}").get_data(
        as_text=True
    )
    assert "Email wording" in html
    assert '<label for="mt-kind">' in html and '<label for="mt-subject">' in html
    assert '<label for="mt-body">' in html and '<label for="mt-language">' in html
    assert 'iframe title="HTML version of the email" sandbox srcdoc' in html
