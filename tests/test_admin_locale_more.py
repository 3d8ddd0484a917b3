"""More of the merchant admin in the user's language: the BigCommerce support page (its times
written the French way, in the shop's zone), the CSV import's refusals and a refused badge label
in another of the store's languages, for a user whose BigCommerce locale is French. English is
unchanged (the other test files assert its exact words)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from io import BytesIO

from sqlalchemy import select

from plugin.extensions import db
from plugin.models import BadgeKind, BadgeTransition, Platform, Variant
from plugin.services import mail_template_form, mail_templates, settings_form
from plugin.services.shops import find_shop
from tests.test_admin_locale import STORE, lang_of, open_app, page, visible_text
from tests.test_admin_locale import store as store  # the fixture

CHANGED = datetime(2026, 11, 30, 13, 5, tzinfo=UTC)  # 14:05 in Paris (CET)


def test_a_french_user_reads_the_support_page_in_french_with_french_dates(client, store):
    variant = db.session.scalars(
        select(Variant).where(Variant.shop_id == store.id, Variant.platform_id == "2")
    ).one()
    db.session.add(
        BadgeTransition(
            shop_id=store.id,
            variant_id=variant.id,
            from_state=BadgeKind.IN_STOCK,
            to_state=BadgeKind.BACKORDER,
            to_eta=date(2026, 12, 14),
            label="Backorder, ships by Mon, December 14, 2026",
            cause="webhook",
            created_at=CHANGED,
        )
    )
    db.session.commit()
    token = open_app(client, "fr-FR", **{"Accept-Language": "en-US"})

    html = page(client, "/support", token)

    assert lang_of(html) == "fr"
    text = visible_text(html)
    assert re.search(r"Connexion à la boutique Webhooks enregistrés : \d+ sur \d+", text)
    assert "Boîte de réception des webhooks" in text
    assert "Dernière réception" in text and "rien pour l'instant" in text
    assert "Changements de badge récents" in text
    assert "Aucun client n'a demandé ses données." in text
    # The shop's zone, the French way; the ISO moment stays for machines.
    assert f'<time datetime="{CHANGED.isoformat()}">30 nov. 2026 14:05 CET</time>' in html
    for english in ("Store connection", "Webhook inbox", "Last received", "nothing yet"):
        assert english not in text


def test_a_french_user_gets_each_bad_csv_row_explained_in_french(client, store):
    token = open_app(client, "fr-FR")
    csv = "variant_id,sku,lead_days\n999,,3\n1,LS-X,3\n2,,beaucoup\n1,,4\n1,,5\n"

    response = client.post(
        f"/bigcommerce/app/{STORE}/variants/import",
        data={"token": token, "file": (BytesIO(csv.encode()), "delais.csv")},
        content_type="multipart/form-data",
    )

    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert lang_of(html) == "fr"
    text = visible_text(html)
    assert "Rien n'a été importé" in text
    assert "4 problèmes dans delais.csv : corrigez chaque ligne ci-dessous" in text
    rows = dict(re.findall(r"<tr><td>(\d+)</td><td>([^<]*)</td></tr>", html))
    rows = {line: visible_text(reason) for line, reason in rows.items()}
    assert rows["2"] == "Aucune variante avec l'identifiant '999' dans cette boutique."
    assert rows["3"] == "La variante 1 a le SKU 'LS-S', pas 'LS-X'."
    assert rows["4"] == "Délai : 'beaucoup' doit être un nombre entier."
    assert rows["6"] == "La variante 1 figure déjà à la ligne 5."
    assert "No variant with id" not in text and "Nothing was imported" not in text


def test_a_french_user_sees_a_refused_label_in_another_language_explained_in_french(client, store):
    store.published_locales = ["en", "de"]
    db.session.commit()
    token = open_app(client, "fr-FR")
    db.session.expire_all()
    shop = find_shop(db.session, Platform.BIGCOMMERCE, STORE)
    form = settings_form.form_values(shop)
    form = {k: v for k, v in form.items() if v != "" and not isinstance(v, dict | list)}
    form.update(
        {
            "token": token,
            "badge_label-de-backorder": "Bald wieder da",
            "badge_label-de-in_stock": "x" * 81,
        }
    )

    response = client.post(f"/bigcommerce/app/{STORE}", data=form)

    assert response.status_code == 422
    html = response.get_data(as_text=True)
    missing = re.search(r'id="badge_label-de-backorder-error">([^<]*)<', html)
    assert (
        visible_text(missing.group(1))
        == "Insérez {eta} là où la date d'expédition doit apparaître."
    )
    too_long = re.search(r'id="badge_label-de-in_stock-error">([^<]*)<', html)
    assert visible_text(too_long.group(1)) == "80 caractères au plus."


def test_every_mail_kind_label_has_a_message_id_for_the_editor():
    # The editor's tabs translate mail_templates.KIND_LABELS by these ids: a label added or
    # reworded there without its id here would stay English.
    assert set(mail_templates.KIND_LABELS.values()) == set(mail_template_form.KIND_LABEL_IDS)
