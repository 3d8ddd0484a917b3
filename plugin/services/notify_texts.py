"""The notify-me form's words per language: the merchant's, else the defaults below.

The consent text a shopper agrees to is kept with each sign-up, with a version: the first
characters of its SHA-256, so the same words always have the same version and any edit gives
a new one. Refusals are worded in the shopper's language too.
"""

from __future__ import annotations

import hashlib

from plugin.models import StoreSettings

# The languages with default wording: the mails', so forms and mails speak the same ones.
from plugin.services.mail_templates import LANGUAGES as LANGUAGES
from plugin.services.mail_templates import choose_locale

# Fields the merchant may reword, with the longest each may be.
FIELDS = {
    "heading": 120,
    "intro": 300,
    "email_label": 80,
    "consent": 600,
    "button": 60,
}

DEFAULTS: dict[str, dict[str, str]] = {
    "en": {
        "heading": "Notify me when it's back",
        "intro": "Leave your email and we'll tell you as soon as this option is back in stock.",
        "email_label": "Email address",
        "consent": (
            "I agree to receive one email from {shop} when this item is back in stock. "
            "I can unsubscribe at any time."
        ),
        "button": "Notify me",
    },
    "fr": {
        "heading": "Prévenez-moi du retour",
        "intro": (
            "Laissez votre e-mail : nous vous préviendrons dès que cette option sera de retour "
            "en stock."
        ),
        "email_label": "Adresse e-mail",
        "consent": (
            "J'accepte de recevoir un e-mail de {shop} quand cet article sera de retour en "
            "stock. Je peux me désinscrire à tout moment."
        ),
        "button": "Me prévenir",
    },
    "de": {
        "heading": "Benachrichtigen, wenn wieder da",
        "intro": (
            "Hinterlassen Sie Ihre E-Mail-Adresse, und wir sagen Ihnen Bescheid, sobald diese "
            "Variante wieder vorrätig ist."
        ),
        "email_label": "E-Mail-Adresse",
        "consent": (
            "Ich bin einverstanden, eine E-Mail von {shop} zu erhalten, sobald dieser Artikel "
            "wieder vorrätig ist. Ich kann mich jederzeit abmelden."
        ),
        "button": "Benachrichtigen",
    },
    "es": {
        "heading": "Avísame cuando vuelva",
        "intro": (
            "Déjanos tu correo y te avisaremos en cuanto esta opción vuelva a estar disponible."
        ),
        "email_label": "Correo electrónico",
        "consent": (
            "Acepto recibir un correo de {shop} cuando este artículo vuelva a estar disponible. "
            "Puedo darme de baja en cualquier momento."
        ),
        "button": "Avisarme",
    },
}

# What the shopper reads after sending the form, and every refusal: not editable.
MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "subscribed": "Thanks! We'll email you when it's back in stock.",
        "pending_confirmation": (
            "Almost done: check your inbox and confirm your address to join the list."
        ),
        "already_subscribed": "You're already on the list for this option.",
        "invalid_email": "Enter a valid email address, like name@example.com.",
        "unknown_variant": "This option can't be found. Reload the page and try again.",
        "unknown_shop": "This store doesn't offer back-in-stock alerts.",
        "not_offered": "This option is available now, so there's nothing to wait for.",
        "stale_form": "This form is out of date. Reload the page and try again.",
        "too_large": "That request is too large.",
        "rate_limited": "Too many attempts. Please wait a few minutes and try again.",
        "invalid_customer": "Your sign-in could not be checked. Reload the page and try again.",
        "bad_request": "Something is missing from the form. Reload the page and try again.",
        "rejected": "We couldn't sign you up.",
        "consent_required": "Please tick the box to agree to the email.",
    },
    "fr": {
        "subscribed": "Merci ! Nous vous écrirons dès que l'article sera de retour.",
        "pending_confirmation": (
            "Presque fini : confirmez votre adresse depuis l'e-mail que nous venons d'envoyer."
        ),
        "already_subscribed": "Vous êtes déjà inscrit pour cette option.",
        "invalid_email": "Saisissez une adresse e-mail valide, comme nom@exemple.fr.",
        "unknown_variant": "Cette option est introuvable. Rechargez la page et réessayez.",
        "unknown_shop": "Cette boutique ne propose pas d'alertes de retour en stock.",
        "not_offered": "Cette option est disponible : inutile d'attendre.",
        "stale_form": "Ce formulaire n'est plus à jour. Rechargez la page et réessayez.",
        "too_large": "Cette demande est trop volumineuse.",
        "rate_limited": "Trop de tentatives. Patientez quelques minutes puis réessayez.",
        "invalid_customer": (
            "Votre connexion n'a pas pu être vérifiée. Rechargez la page et réessayez."
        ),
        "bad_request": "Il manque une information. Rechargez la page et réessayez.",
        "rejected": "Nous n'avons pas pu vous inscrire.",
        "consent_required": "Cochez la case pour accepter l'e-mail.",
    },
    "de": {
        "subscribed": "Danke! Wir schreiben Ihnen, sobald der Artikel wieder da ist.",
        "pending_confirmation": (
            "Fast geschafft: Bitte bestätigen Sie Ihre Adresse über die E-Mail, die wir "
            "gerade gesendet haben."
        ),
        "already_subscribed": "Sie stehen für diese Variante bereits auf der Liste.",
        "invalid_email": "Geben Sie eine gültige E-Mail-Adresse ein, z. B. name@beispiel.de.",
        "unknown_variant": (
            "Diese Variante wurde nicht gefunden. Laden Sie die Seite neu und versuchen Sie es "
            "noch einmal."
        ),
        "unknown_shop": "Dieser Shop bietet keine Benachrichtigungen an.",
        "not_offered": "Diese Variante ist jetzt verfügbar.",
        "stale_form": "Dieses Formular ist veraltet. Bitte laden Sie die Seite neu.",
        "too_large": "Diese Anfrage ist zu groß.",
        "rate_limited": (
            "Zu viele Versuche. Bitte warten Sie einige Minuten und versuchen Sie es erneut."
        ),
        "invalid_customer": (
            "Ihre Anmeldung konnte nicht geprüft werden. Bitte laden Sie die Seite neu."
        ),
        "bad_request": "Im Formular fehlt etwas. Bitte laden Sie die Seite neu.",
        "rejected": "Die Anmeldung war nicht möglich.",
        "consent_required": "Bitte setzen Sie das Häkchen, um der E-Mail zuzustimmen.",
    },
    "es": {
        "subscribed": "¡Gracias! Te escribiremos cuando vuelva a estar disponible.",
        "pending_confirmation": (
            "Casi listo: confirma tu dirección desde el correo que te acabamos de enviar."
        ),
        "already_subscribed": "Ya estás en la lista para esta opción.",
        "invalid_email": "Introduce un correo válido, como nombre@ejemplo.es.",
        "unknown_variant": "No encontramos esta opción. Recarga la página e inténtalo de nuevo.",
        "unknown_shop": "Esta tienda no ofrece avisos de disponibilidad.",
        "not_offered": "Esta opción ya está disponible.",
        "stale_form": "Este formulario está desactualizado. Recarga la página.",
        "too_large": "La solicitud es demasiado grande.",
        "rate_limited": "Demasiados intentos. Espera unos minutos y vuelve a intentarlo.",
        "invalid_customer": "No pudimos comprobar tu sesión. Recarga la página.",
        "bad_request": "Falta algo en el formulario. Recarga la página.",
        "rejected": "No pudimos suscribirte.",
        "consent_required": "Marca la casilla para aceptar el correo.",
    },
}


def language_of(*candidates: str | None) -> str:
    """The first candidate whose language has wording ("fr-CA" → "fr"), else English: the
    same choice the mails make, so a shopper's form and their mails agree."""
    return choose_locale(*candidates)[0]


def form_texts(settings: StoreSettings | None, language: str, shop_name: str) -> dict[str, str]:
    """The form's words in `language`: the merchant's where set, else the defaults, with
    {shop} filled in."""
    own = ((settings.notify_texts if settings is not None else None) or {}).get(language) or {}
    texts = {}
    for field in FIELDS:
        value = own.get(field) if isinstance(own.get(field), str) else None
        texts[field] = (value or DEFAULTS[language][field]).replace("{shop}", shop_name)
    return texts


def consent_version(consent_text: str) -> str:
    return hashlib.sha256(consent_text.encode("utf-8")).hexdigest()[:12]


def message(language: str, key: str) -> str:
    return MESSAGES.get(language, MESSAGES["en"]).get(key) or MESSAGES["en"][key]


# The pages the links in the mails open.
PAGE_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "confirm_title": "Confirm your alert",
        "confirm_text": "Press the button to get one email when {product} is back in stock.",
        "confirm_button": "Yes, notify me",
        "confirmed_title": "You're on the list",
        "confirmed_text": "We'll email you once when {product} is back in stock.",
        "ask_title": "Unsubscribe?",
        "ask_text": "You won't hear from us about {product} any more.",
        "ask_button": "Unsubscribe",
        "unsubscribed_title": "You're unsubscribed",
        "unsubscribed_text": "You won't get any more alerts about {product}.",
        "unknown_title": "This link doesn't work any more",
        "unknown_text": "The alert may have been deleted at your request or by the store.",
        "rate_limited_title": "Too many attempts",
        "rate_limited_text": "Please wait a few minutes and try again.",
    },
    "fr": {
        "confirm_title": "Confirmez votre alerte",
        "confirm_text": "Cliquez pour recevoir un e-mail quand {product} sera de retour en stock.",
        "confirm_button": "Oui, prévenez-moi",
        "confirmed_title": "Vous êtes inscrit",
        "confirmed_text": "Nous vous écrirons une fois quand {product} sera de retour en stock.",
        "ask_title": "Se désinscrire ?",
        "ask_text": "Vous ne recevrez plus de nouvelles de {product}.",
        "ask_button": "Se désinscrire",
        "unsubscribed_title": "Vous êtes désinscrit",
        "unsubscribed_text": "Vous ne recevrez plus d'alerte pour {product}.",
        "unknown_title": "Ce lien ne fonctionne plus",
        "unknown_text": "L'alerte a peut-être été supprimée à votre demande ou par la boutique.",
        "rate_limited_title": "Trop de tentatives",
        "rate_limited_text": "Patientez quelques minutes puis réessayez.",
    },
    "de": {
        "confirm_title": "Benachrichtigung bestätigen",
        "confirm_text": (
            "Klicken Sie, um eine E-Mail zu erhalten, sobald {product} wieder vorrätig ist."
        ),
        "confirm_button": "Ja, benachrichtigen",
        "confirmed_title": "Sie stehen auf der Liste",
        "confirmed_text": "Wir schreiben Ihnen einmal, sobald {product} wieder vorrätig ist.",
        "ask_title": "Abmelden?",
        "ask_text": "Sie hören dann nichts mehr zu {product}.",
        "ask_button": "Abmelden",
        "unsubscribed_title": "Sie sind abgemeldet",
        "unsubscribed_text": "Sie erhalten keine Benachrichtigungen zu {product} mehr.",
        "unknown_title": "Dieser Link funktioniert nicht mehr",
        "unknown_text": "Die Benachrichtigung wurde vielleicht auf Ihren Wunsch gelöscht.",
        "rate_limited_title": "Zu viele Versuche",
        "rate_limited_text": "Bitte warten Sie einige Minuten.",
    },
    "es": {
        "confirm_title": "Confirma tu aviso",
        "confirm_text": "Pulsa para recibir un correo cuando {product} vuelva a estar disponible.",
        "confirm_button": "Sí, avísame",
        "confirmed_title": "Estás en la lista",
        "confirmed_text": "Te escribiremos una vez cuando {product} vuelva a estar disponible.",
        "ask_title": "¿Darte de baja?",
        "ask_text": "No volverás a saber de nosotros sobre {product}.",
        "ask_button": "Darme de baja",
        "unsubscribed_title": "Te has dado de baja",
        "unsubscribed_text": "No recibirás más avisos sobre {product}.",
        "unknown_title": "Este enlace ya no funciona",
        "unknown_text": "Puede que el aviso se haya borrado a petición tuya o de la tienda.",
        "rate_limited_title": "Demasiados intentos",
        "rate_limited_text": "Espera unos minutos y vuelve a intentarlo.",
    },
}
