"""Notify-me sign-ups: who waits for which variant, with the evidence of their consent.

One place decides a sign-up for every storefront (a theme block behind an app proxy, a
storefront script, a headless store's JSON call): the handlers only say which shop it is, who the
platform says the shopper is (if anyone), and where the request came from. Every refusal is a
`SignUpRefused` with a code the shopper's message is looked up by, raised before anything is
stored.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from domain.badges import BadgeKind
from plugin.models import (
    NotifySubscription,
    Shop,
    SubscriptionStatus,
    Variant,
    VariantBadge,
    utcnow,
)
from plugin.models.notify import WAITING
from plugin.services import mail_templates, notify_policy
from plugin.services.badge_labels import shop_languages
from plugin.services.notify_texts import (
    LANGUAGES,
    MESSAGES,
    consent_version,
    form_texts,
    language_of,
)
from plugin.services.outbox import queue_mail

# The storefront form a sign-up came from (the handlers name them): a short slug.
FORM_NAME = re.compile(r"^[a-z][a-z_]{0,31}$")
MAX_EMAIL = 254
MAX_PAGE_URL = 2048
MAX_USER_AGENT = 512


class SignUpRefused(Exception):
    """A sign-up that cannot be taken; `code` names the shopper's message."""

    def __init__(self, code: str, status: int, field: str | None = None, detail: str = ""):
        super().__init__(detail or code)
        self.code, self.status, self.field = code, status, field


@dataclass(frozen=True)
class SignUp:
    variant: str  # the platform's variant id
    email: str
    locale: str | None
    consent_version: str | None
    form: str
    page_url: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    # Set only from what the platform signed: its customer id, and their own address.
    customer_id: str | None = None
    customer_email: str | None = None


@dataclass(frozen=True)
class SignUpResult:
    status: str  # subscribed | pending_confirmation | already_subscribed
    language: str
    subscription_id: int | None = None
    mail_id: int | None = None


def shop_name(shop: Shop) -> str:
    return shop.name or shop.domain


def offered_states(shop: Shop) -> tuple[BadgeKind, ...]:
    settings = shop.settings
    if settings is None or not settings.notify_enabled or not settings.enabled:
        return ()
    if settings.notify_on_backorder:
        return (BadgeKind.OUT_OF_STOCK, BadgeKind.BACKORDER)
    return (BadgeKind.OUT_OF_STOCK,)


def double_opt_in(shop: Shop) -> bool:
    chosen = shop.settings.notify_double_opt_in if shop.settings else None
    return notify_policy.double_opt_in_applies(shop) if chosen is None else chosen


def form_config(shop: Shop, locale: str | None) -> dict:
    """What a storefront form shows, in the shopper's language."""
    language = language_of(locale, shop.locale)
    texts = form_texts(shop.settings, language, shop_name(shop))
    return {
        "enabled": bool(offered_states(shop)),
        "show_on": [state.value for state in offered_states(shop)],
        "double_opt_in": double_opt_in(shop),
        "locale": language,
        "consent_version": consent_version(texts["consent"]),
        "texts": texts,
        "messages": MESSAGES[language],
    }


def storefront_form(shop: Shop) -> dict:
    """The form's configuration for a theme that must not ask the app on a product page (the
    theme app extension reads it from the shop metafield the storefront labels live in):
    `form_config` in every language the store publishes and the app words, and the language to
    fall back on (the one `form_config` falls back on: the shop's own)."""
    fallback = language_of(shop.locale)
    languages = {}
    worded = [language for language in shop_languages(shop) if language in LANGUAGES]
    for language in dict.fromkeys([*worded, fallback]):
        texts = form_texts(shop.settings, language, shop_name(shop))
        languages[language] = {
            "consent_version": consent_version(texts["consent"]),
            "texts": texts,
            "messages": MESSAGES[language],
        }
    return {
        "enabled": bool(offered_states(shop)),
        "show_on": [state.value for state in offered_states(shop)],
        "double_opt_in": double_opt_in(shop),
        "default_language": fallback,
        "languages": languages,
    }


def normalise_email(raw: str) -> str:
    """The address as stored (lower-case), or SignUpRefused: syntax only, no DNS lookups at
    request time."""
    raw = (raw or "").strip()
    if not raw or len(raw) > MAX_EMAIL:
        raise SignUpRefused("invalid_email", 422, "email")
    try:
        checked = validate_email(raw, check_deliverability=False)
    except EmailNotValidError as exc:
        raise SignUpRefused("invalid_email", 422, "email", str(exc)) from exc
    return checked.normalized.lower()


def truncate_ip(raw: str | None) -> str | None:
    """Enough to show where a sign-up came from, not who: IPv4 to /24, IPv6 to /48."""
    if not raw:
        return None
    try:
        address = ipaddress.ip_address(raw.strip())
    except ValueError:
        return None
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def _page(url: str | None) -> str | None:
    url = (url or "").strip()
    if not url.startswith(("https://", "http://")) or len(url) > MAX_PAGE_URL:
        return None
    return url


def subscribe(
    session: Session, shop: Shop, sign_up: SignUp, *, app_url: str, now: datetime | None = None
) -> SignUpResult:
    """Take a sign-up (in the caller's transaction), or raise SignUpRefused."""
    now = now or utcnow()
    language = language_of(sign_up.locale, shop.locale)
    if not FORM_NAME.match(sign_up.form or ""):
        raise SignUpRefused("bad_request", 400, None, "unknown form")
    email = normalise_email(sign_up.email)
    variant = session.scalar(
        select(Variant).where(Variant.shop_id == shop.id, Variant.platform_id == sign_up.variant)
    )
    if variant is None:
        raise SignUpRefused("unknown_variant", 404)
    badge = session.get(VariantBadge, variant.id)
    if badge is None or badge.state not in offered_states(shop):
        raise SignUpRefused("not_offered", 409)
    texts = form_texts(shop.settings, language, shop_name(shop))
    version = consent_version(texts["consent"])
    if not sign_up.consent_version:
        raise SignUpRefused("bad_request", 400, None, "consent_version is required")
    if sign_up.consent_version != version:
        raise SignUpRefused("stale_form", 409)

    existing = _waiting(session, shop.id, variant.id, email)
    if existing is not None:
        return SignUpResult("already_subscribed", language, existing.id)

    # A shopper the platform signed in, signing up with their own address, proved it already.
    proven = bool(sign_up.customer_email) and sign_up.customer_email.strip().lower() == email
    confirm = double_opt_in(shop) and not proven
    subscription = NotifySubscription(
        shop_id=shop.id,
        variant_id=variant.id,
        email=email,
        locale=language,
        status=SubscriptionStatus.PENDING if confirm else SubscriptionStatus.ACTIVE,
        token=secrets.token_urlsafe(32),
        consent_text=texts["consent"],
        consent_version=version,
        form=sign_up.form,
        page_url=_page(sign_up.page_url),
        ip_truncated=truncate_ip(sign_up.ip),
        user_agent=(sign_up.user_agent or "")[:MAX_USER_AGENT] or None,
        customer_id=(sign_up.customer_id or None),
        double_opt_in=confirm,
        created_at=now,
        confirmed_at=None if confirm else now,
    )
    try:
        with session.begin_nested():
            session.add(subscription)
    except IntegrityError:  # the same address signed up at the same moment
        existing = _waiting(session, shop.id, variant.id, email)
        return SignUpResult("already_subscribed", language, existing.id if existing else None)
    if not confirm:
        return SignUpResult("subscribed", language, subscription.id)
    mail = mail_templates.compose(
        session,
        shop,
        "notify_confirm",
        language,
        {
            "product": variant_name(variant),
            "confirm_url": f"{app_url.rstrip('/')}/notify/confirm/{subscription.token}",
        },
    )
    mail_id = queue_mail(
        session,
        shop,
        kind="notify_confirm",
        recipient=email,
        key=f"notify_confirm:{subscription.id}",
        mail=mail,
        notify_subscription_id=subscription.id,
    )
    return SignUpResult("pending_confirmation", language, subscription.id, mail_id)


def variant_name(variant: Variant) -> str:
    title = variant.product.title if variant.product else ""
    if variant.title and variant.title.lower() not in ("default title", "default", title.lower()):
        return f"{title} ({variant.title})" if title else variant.title
    return title or variant.sku or f"#{variant.platform_id}"


def _waiting(session: Session, shop_id: int, variant_id: int, email: str):
    return session.scalar(
        select(NotifySubscription).where(
            NotifySubscription.shop_id == shop_id,
            NotifySubscription.variant_id == variant_id,
            NotifySubscription.email == email,
            NotifySubscription.status.in_(WAITING),
        )
    )


def by_token(session: Session, token: str) -> NotifySubscription | None:
    if not token or len(token) > 64:
        return None
    return session.scalar(select(NotifySubscription).where(NotifySubscription.token == token))


def confirm(session: Session, token: str, now: datetime | None = None):
    """Confirm a pending sign-up (the double opt-in link); returns it, or None if unknown."""
    subscription = by_token(session, token)
    if subscription is not None and subscription.status == SubscriptionStatus.PENDING:
        subscription.status = SubscriptionStatus.ACTIVE
        subscription.confirmed_at = now or utcnow()
    return subscription


def unsubscribe(session: Session, token: str, now: datetime | None = None):
    """Stop a sign-up at once (a waiting one is never alerted; an alerted one is done)."""
    subscription = by_token(session, token)
    if subscription is not None and subscription.status in WAITING:
        subscription.status = SubscriptionStatus.UNSUBSCRIBED
        subscription.unsubscribed_at = now or utcnow()
    return subscription
