"""Which notify-me rules a store's law asks for: double opt-in in the EU and EEA.

The merchant may choose double opt-in on or off; "automatic" (None) follows the store's
country, because the EU and EEA expect proof that the address owner asked (the confirmation
link), while most other places accept a single opt-in with consent kept as evidence. A store
whose country is not known gets single opt-in on automatic, and the settings page says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from plugin.models import Shop
from plugin.services import admin_text
from plugin.services.admin_text import _

# ISO 3166-1 alpha-2: the 27 EU members, then the EEA's Iceland, Liechtenstein and Norway.
EU = frozenset(
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE".split()  # noqa: SIM905
)
EEA = EU | {"IS", "LI", "NO"}


def in_eea(country: str | None) -> bool:
    """True for an EU or EEA country code (any case); Greece's EU code "EL" counts too."""
    code = (country or "").strip().upper()
    return code in EEA or code == "EL"


def double_opt_in_applies(shop: Shop) -> bool:
    """Whether new sign-ups of this store must confirm their address by email.

    The merchant's explicit choice wins; on "automatic" it is on for stores in the EU/EEA.
    """
    chosen = shop.settings.notify_double_opt_in if shop.settings is not None else None
    if chosen is not None:
        return bool(chosen)
    return in_eea(shop.country)


def country_name(country: str | None) -> str | None:
    code = (country or "").strip().upper()
    if not code:
        return None
    return admin_text.locale().territories.get(code, code)


@dataclass(frozen=True)
class DoubleOptInView:
    """What the settings page says about double opt-in for this store, as saved now."""

    applies: bool
    country: str | None  # the country's name in the reader's language, or None if unknown
    in_eea: bool
    automatic: bool  # the merchant left it on "automatic"

    @property
    def automatic_means(self) -> str:
        if self.country is None:
            return _("off, because your store's country is not known")
        if self.in_eea:
            return _("on, because your store is in %(country)s (EU/EEA)", country=self.country)
        return _(
            "off, because your store is in %(country)s (outside the EU/EEA)", country=self.country
        )


def view(shop: Shop) -> DoubleOptInView:
    return DoubleOptInView(
        applies=double_opt_in_applies(shop),
        country=country_name(shop.country),
        in_eea=in_eea(shop.country),
        automatic=shop.settings is None or shop.settings.notify_double_opt_in is None,
    )
