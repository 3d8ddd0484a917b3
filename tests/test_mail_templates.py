"""Customer mail templates: defaults in four languages, the merchant's wording in a narrowed
sandbox, the fallback when it breaks, and the editor that refuses what would not render."""

from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import select

from plugin.extensions import db
from plugin.models import MailTemplate
from plugin.services import mail_template_form, mail_templates
from plugin.services.mail_sandbox import MAX_OUTPUT, TemplateRefused, render
from plugin.services.mail_templates import LANGUAGES, LINE_FIELDS, ORDER_KINDS, compose
from tests import factories

EVIL_NAME = "<script>alert('x')</script> & Co"
DAY = date(2026, 12, 24)
EARLIER = date(2026, 11, 3)
WRITTEN = {  # DAY and EARLIER as each language writes them (Babel, long format)
    "en": ("December 24, 2026", "November 3, 2026"),
    "fr": ("24 décembre 2026", "3 novembre 2026"),
    "de": ("24. Dezember 2026", "3. November 2026"),
    "es": ("24 de diciembre de 2026", "3 de noviembre de 2026"),
}
CANCEL = "https://app.example.com/orders/cancel/tok-123?x=1&y=2"
CONSENT = "https://app.example.com/orders/wait/tok-456"


def context(kind: str) -> dict:
    everything = {
        "shop_name": "Maison Lin",
        "customer_name": EVIL_NAME,
        "order_name": "#1001",
        "product": "Linen shirt (M)",
        "lines": [
            {"product": "Linen shirt (M)", "quantity": 2, "eta": DAY},
            {"product": "Canvas tote", "quantity": 1, "eta": None},
        ],
        "old_eta": EARLIER,
        "new_eta": DAY,
        "promised_eta": EARLIER,
        "reason": "the supplier's ship was late",
        "units": 1,
        "of_units": 2,
        "cancel_url": CANCEL,
        "consent_url": CONSENT,
    }
    return {name: everything[name] for name in mail_templates.VARIABLES[kind]}


@pytest.fixture
def shop(app):
    shop = factories.shop()
    shop.name = "Maison Lin"
    shop.settings.postal_address = "12 Rue des Lilas\n75011 Paris"
    db.session.commit()
    return shop


def own_template(shop, kind="eta_change", language="en", subject="Hi", body="Body") -> None:
    db.session.add(
        MailTemplate(shop_id=shop.id, kind=kind, locale=language, subject=subject, body=body)
    )
    db.session.commit()


@pytest.mark.parametrize("language", list(LANGUAGES))
@pytest.mark.parametrize("kind", ORDER_KINDS)
def test_every_kind_renders_in_every_language_with_both_parts(shop, kind, language):
    mail = compose(db.session, shop, kind, language, context(kind))

    assert mail.locale == language and mail.warning is None
    assert mail.subject and "{" not in mail.subject and "\n" not in mail.subject
    assert "#1001" in mail.subject
    # Customer data is text in the plain part and escaped in the HTML part, never markup.
    assert EVIL_NAME in mail.text
    assert "<script>" not in mail.html
    assert "&lt;script&gt;alert(" in mail.html
    assert "{{" not in mail.text and "{%" not in mail.text and "{{" not in mail.html
    # One layout: the shop's name, its postal address in the footer, CSS inlined.
    assert "Maison Lin" in mail.html and "75011 Paris" in mail.html and "75011 Paris" in mail.text
    assert "<style" not in mail.html and 'style="' in mail.html
    assert f'<html lang="{language}"' in mail.html
    # Dates in the customer's language.
    day, earlier = WRITTEN[language]
    if kind != "ships_soon":
        assert day in mail.text and day in mail.html
    if kind in ("eta_change", "delay_notice"):
        assert earlier in mail.text
    # The cancel link (and the consent link) are in both parts when the kind has them.
    if "cancel_url" in mail_templates.VARIABLES[kind]:
        assert CANCEL in mail.text
        assert 'href="https://app.example.com/orders/cancel/tok-123?x=1&amp;y=2"' in mail.html
    else:
        assert "/orders/cancel/" not in mail.text
    if kind == "delay_notice":
        assert CONSENT in mail.text and f'href="{CONSENT}"' in mail.html
    if kind == "backorder_confirmation":
        assert re.search(r"<li[^>]*>Linen shirt \(M\) \N{MULTIPLICATION SIGN} 2", mail.html)


def test_language_falls_back_from_region_to_shop_to_english(shop):
    kind = "eta_change"
    fr_ca = compose(db.session, shop, kind, "fr-CA", context(kind))
    assert fr_ca.locale == "fr"
    assert "Nouvelle date" in fr_ca.subject
    assert "décembre 2026" in fr_ca.text

    shop.locale = "de"
    db.session.commit()
    assert compose(db.session, shop, kind, "it", context(kind)).locale == "de"
    assert compose(db.session, shop, kind, "", context(kind)).locale == "de"
    assert compose(db.session, shop, kind, "es-MX", context(kind)).locale == "es"

    shop.locale = None
    db.session.commit()
    assert compose(db.session, shop, kind, "pt-BR", context(kind)).locale == "en"
    assert mail_templates.choose_locale("nonsense-!!", None, "en")[0] == "en"


def test_no_postal_address_and_missing_optional_values(shop):
    shop.settings.postal_address = None
    db.session.commit()
    values = context("delay_notice") | {"promised_eta": None, "new_eta": None, "consent_url": ""}
    values["customer_name"] = ""
    mail = compose(db.session, shop, "delay_notice", "en", values)
    assert "within 30 days of your order" in mail.text
    assert "do not know yet when it will ship" in mail.text
    assert "Hello," in mail.text
    assert "None" not in mail.text
    assert "/orders/wait/" not in mail.text and "75011" not in mail.html


def test_merchant_wording_is_used_with_customer_data_escaped(shop):
    own_template(
        shop,
        "backorder_confirmation",
        "fr",
        subject="Commande {{ order_name }} pour {{ customer_name }}",
        body=(
            "Cher client {{ customer_name|upper }} <b>gras</b>,\n\n"
            "{% for line in lines %}\n- {{ loop.index }}. {{ line.product }}: "
            "{{ line.eta or 'bientôt' }}\n{% endfor %}\n\n"
            "[Voir la commande]({{ cancel_url }})"
        ),
    )
    mail = compose(
        db.session, shop, "backorder_confirmation", "fr-FR", context("backorder_confirmation")
    )
    assert mail.warning is None
    assert mail.subject == f"Commande #1001 pour {EVIL_NAME}"
    assert "Cher client <SCRIPT>ALERT('X')</SCRIPT> & CO <b>gras</b>" in mail.text
    assert "- 1. Linen shirt (M): 24 décembre 2026" in mail.text
    assert "- 2. Canvas tote: bientôt" in mail.text
    assert f"Voir la commande: {CANCEL}" in mail.text
    # The merchant's own words are text too: the HTML comes only from the layout.
    assert "&lt;SCRIPT&gt;" in mail.html and "&lt;b&gt;gras&lt;/b&gt;" in mail.html
    assert "<b>" not in mail.html and "<SCRIPT>" not in mail.html
    assert re.search(
        r'<a class="?button"?[^>]*href="https://app\.example\.com/orders/cancel/', mail.html
    )
    # The link is in the wording already, so the layout does not add it a second time.
    assert mail.text.count(CANCEL) == 1
    # Other languages keep the default.
    assert compose(
        db.session, shop, "backorder_confirmation", "en", context("backorder_confirmation")
    ).subject.startswith("Your order")


@pytest.mark.parametrize(
    "body, reason",
    [
        ("{{ customer_name.__class__ }}", "underscore"),
        ("{{ order_name|nonexistent }}", "not allowed"),
        ("{{ units / 0 }}", "ZeroDivisionError"),
        ("{% for line in lines %}", "Syntax error"),
        (
            "{% for a in lines %}{% for b in lines %}{{ a.product }}{{ b.product }}"
            "{% endfor %}{% endfor %}",
            "100 kB",
        ),
    ],
)
def test_a_broken_merchant_template_falls_back_to_the_default_with_a_warning(shop, body, reason):
    kind = "ships_soon" if "units" in body else "backorder_confirmation"
    if "lines" in body and "for a" in body:  # fine on the preview's 2 lines, too big on 400
        values = context(kind) | {
            "lines": [{"product": "x" * 100, "quantity": 1, "eta": DAY}] * 400
        }
    else:
        values = context(kind)
    own_template(shop, kind, "en", subject="Yours {{ order_name }}", body=body)

    mail = compose(db.session, shop, kind, "en", values)

    default_subject = compose(db.session, shop, kind, "de", context(kind))  # untouched language
    assert default_subject.locale == "de"
    assert mail.locale == "en" and not mail.subject.startswith("Yours")
    assert mail.warning and reason in mail.warning
    assert "default wording was sent" in mail.warning
    assert mail_templates.KIND_LABELS[kind] in mail.warning
    assert EVIL_NAME in mail.text and "&lt;script&gt;" in mail.html


INJECTIONS = [
    ("{{ ''.__class__.__mro__ }}", "underscore"),
    ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "Calling functions is not allowed"),
    ("{{ customer_name|attr('__class__') }}", "attr filter is not allowed"),
    ("{{ (customer_name|attr('\\x5f\\x5fclass\\x5f\\x5f')) }}", "attr filter is not allowed"),
    ("{{ lines|map(attribute='__class__')|join }}", "filter 'map' is not allowed"),
    ("{{ customer_name.upper() }}", "Calling functions is not allowed"),
    ("{{ lines[0]['__class__'] }}", "cannot be read"),
    ("{{ cycler.__init__.__globals__ }}", "underscore"),
    ("{{ lipsum }}", "Unknown variable 'lipsum'"),
    ("{{ customer_name|safe }}", "filter 'safe' is not allowed"),
    ("{{ '{0.__class__}'|format(customer_name) }}", "filter 'format' is not allowed"),
    ("{{ '%s' % customer_name }}", "Formatting text with %"),
    ("{% set x = 1 %}", "{% set %} is not allowed"),
    ("{% include 'admin/_settings_form.html' %}", "cannot include"),
    ("{% extends 'base.html' %}", "cannot extend"),
    ("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", "{% macro %} is not allowed"),
    ("{% for i in range(100000000) %}x{% endfor %}", "Loops can only go over lines"),
    (
        "{% for a in lines %}{% for b in lines %}{% for c in lines %}{% endfor %}{% endfor %}"
        "{% endfor %}",
        "nested at most 2 deep",
    ),
    ("{% for a in lines recursive %}{{ loop(lines) }}{% endfor %}", "not allowed"),
    ("{{ 'x' * 1000000 }}", "more than 100 kB"),
    ("{{ 9 ** 9 ** 9 }}", "Powers (**) are not allowed"),
    ("{{ customer_name|join(customer_name * 10000) }}", "more than 100 kB"),
    ("{{ custmer_name }}", "Unknown variable 'custmer_name'"),
]


@pytest.mark.parametrize("body, message", INJECTIONS)
def test_the_editor_refuses_template_injection_with_a_clear_message(shop, body, message):
    edit = mail_template_form.submit(
        db.session,
        shop,
        {
            "kind": "backorder_confirmation",
            "language": "en",
            "subject": "Order {{ order_name }}",
            "body": body,
            "action": "save",
        },
    )
    assert not edit.ok and not edit.saved
    assert message in edit.errors["body"], edit.errors
    assert db.session.scalar(select(MailTemplate)) is None


def test_injection_in_the_subject_is_refused_next_to_the_subject(shop):
    edit = mail_template_form.submit(
        db.session,
        shop,
        {
            "kind": "eta_change",
            "language": "fr",
            "subject": "{{ ''.__class__ }}",
            "body": "Bonjour",
            "action": "save",
        },
    )
    assert "underscore" in edit.errors["subject"] and "body" not in edit.errors


def test_endless_loops_and_huge_output_are_bounded_when_rendering():
    many = [{"product": "p", "quantity": 1, "eta": None}] * 5000
    quiet = (
        "{% for a in lines %}{% for b in lines %}{% if a.quantity %}{% endif %}{% endfor %}"
        "{% endfor %}"
    )
    with pytest.raises(TemplateRefused, match="loops would take more than"):
        render(quiet, {"lines": many}, html=False, line_fields=LINE_FIELDS)
    # Long names reach 100 kB within a few hundred steps, long before the time budget, even on
    # a loaded machine.
    wordy = [{"product": "p" * 500, "quantity": 1, "eta": None}] * 5000
    loud = "{% for a in lines %}{% for b in lines %}{{ a.product }}{% endfor %}{% endfor %}"
    with pytest.raises(TemplateRefused, match="more than 100 kB"):
        render(loud, {"lines": wordy}, html=True, line_fields=LINE_FIELDS)
    big_constant = "{{ '" + "x" * (MAX_OUTPUT // 10) + "' ~ '" + "x" * (MAX_OUTPUT // 10) + "' }}"
    with pytest.raises(TemplateRefused, match="characters long"):
        render(big_constant, {}, html=False)


def test_the_editor_saves_previews_and_restores(shop):
    form = {
        "kind": "ships_soon",
        "language": "es",
        "subject": "¡{{ product }} ya viene!",
        "body": "Hola {{ customer_name }}:\n\n- {{ units }} de {{ of_units }}\n",
    }
    previewed = mail_template_form.submit(db.session, shop, form | {"action": "preview"})
    assert previewed.ok and not previewed.saved and previewed.preview is not None
    assert previewed.preview.subject == "¡Linen shirt (M / Blue) ya viene!"
    assert "<li" in previewed.preview.html and "1 de 2" in previewed.preview.text
    assert db.session.scalar(select(MailTemplate)) is None

    saved = mail_template_form.submit(db.session, shop, form | {"action": "save"})
    assert saved.saved and saved.custom
    row = db.session.scalar(select(MailTemplate))
    assert (row.kind, row.locale, row.subject) == ("ships_soon", "es", form["subject"])
    assert mail_template_form.load(db.session, shop, "ships_soon", "es").custom

    restored = mail_template_form.submit(db.session, shop, form | {"action": "reset"})
    assert restored.saved and not restored.custom
    assert db.session.scalar(select(MailTemplate)) is None
    assert restored.subject == mail_templates.default_template("ships_soon", "es")[0]


def test_a_template_that_fails_with_empty_optional_values_is_refused(shop):
    edit = mail_template_form.submit(
        db.session,
        shop,
        {
            "kind": "eta_change",
            "language": "en",
            "subject": "New date",
            "body": "Was {{ old_eta|truncate(3) }} now {{ new_eta }}, {{ reason|first }}",
            "action": "save",
        },
    )
    assert not edit.ok and "body" in edit.errors


def test_sandbox_page_edits_previews_and_shows_errors_next_to_the_field(client, shop):
    page = client.get("/sandbox/emails?kind=delay_notice&language=de")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Verzögerung" in html and 'id="mail-preview"' in html
    assert "{{ consent_url }}" in html  # the variables list

    refused = client.post(
        "/sandbox/emails",
        data={
            "kind": "delay_notice",
            "language": "de",
            "subject": "Hallo",
            "body": "{{ ''.__class__.__mro__ }}",
            "action": "save",
        },
    )
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert 'id="body-error"' in html and "underscore" in html
    assert "{{ &#39;&#39;.__class__.__mro__ }}" in html  # what was typed is kept
    assert db.session.scalar(select(MailTemplate)) is None

    saved = client.post(
        "/sandbox/emails",
        data={
            "kind": "delay_notice",
            "language": "de",
            "subject": "Verspätung bei {{ product }}",
            "body": "Hallo {{ customer_name }},\n\nneuer Termin: {{ new_eta }}.",
            "action": "save",
        },
    )
    assert saved.status_code == 302
    page = client.get(saved.headers["Location"]).get_data(as_text=True)
    assert "Wording saved." in page and "· yours" in page
    assert db.session.scalar(select(MailTemplate)).subject == "Verspätung bei {{ product }}"


def test_settings_form_save_still_works_alongside(client, shop):
    page = client.get("/sandbox/settings")
    assert page.status_code == 200


def test_bigcommerce_page_edits_wording_with_the_app_token_and_no_cookie(app, client):
    import responses

    from tests.bc_callback_helpers import FakeStore, assert_no_cookie
    from tests.test_bigcommerce_load_embedded import OWNER_A, STORE_A, STORE_B, app_token, installed

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeStore(STORE_A).install(rsps)
        FakeStore(STORE_B).install(rsps)
        installed(STORE_A, OWNER_A)
        token = app_token(client, STORE_A, OWNER_A)

        page = client.get(f"/bigcommerce/app/{STORE_A}/emails?token={token}&kind=eta_change")
        assert page.status_code == 200 and "New shipping date" in page.get_data(as_text=True)
        assert_no_cookie(page)
        refused = client.post(
            f"/bigcommerce/app/{STORE_A}/emails?token={token}",
            data={
                "kind": "eta_change",
                "language": "es",
                "subject": "x",
                "body": "{{ 1 ** 2 }}",
                "action": "save",
            },
        )
        assert refused.status_code == 422
        assert "Powers (**) are not allowed" in refused.get_data(as_text=True)
        saved = client.post(
            f"/bigcommerce/app/{STORE_A}/emails?token={token}",
            data={
                "kind": "eta_change",
                "language": "es",
                "subject": "Fecha: {{ new_eta }}",
                "body": "Hola",
                "action": "save",
            },
        )
        assert saved.status_code == 302 and f"token={token}" in saved.headers["Location"]
        assert_no_cookie(saved)
        assert "Wording saved." in client.get(saved.headers["Location"]).get_data(as_text=True)
        assert client.get(f"/bigcommerce/app/{STORE_B}/emails?token={token}").status_code == 403
