"""The sandbox "platform" API: reads its catalogue and stores pushed badges in the app's DB.

It stands where Shopify's GraphQL API or BigCommerce's V3 API stand for real shops, so the
worker's code path is the same; only the transport is a table instead of HTTPS.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connectors.base import BadgePush, CatalogPage
from plugin.models import SandboxOrder, SandboxProduct, SandboxVariant, Shop, utcnow
from webhooks.events import OrderCreated, OrderLine, ProductFacts, VariantFacts, VariantRef

PAGE_SIZE = 50
LOCATION = "default"


class SandboxConnector:
    platform = "sandbox"

    def __init__(self, shop: Shop, session: Session):
        self.shop = shop
        self.session = session

    def prepare_store(self) -> None:
        """The sandbox store shows whatever is pushed; it needs no setup."""

    def fetch_product(self, product_id: str) -> ProductFacts | None:
        product = self._product(product_id)
        return product_facts(product) if product else None

    def resolve_variant(self, ref: VariantRef) -> ProductFacts | None:
        variant = self._variant(ref.variant_id)
        return product_facts(variant.product) if variant else None

    def fetch_level(self, ref: VariantRef, location_id: str) -> int | None:
        variant = self._variant(ref.variant_id)
        return variant.inventory if variant and location_id == LOCATION else None

    def fetch_order(self, order_id: str) -> OrderCreated | None:
        order = self.session.get(SandboxOrder, int(order_id)) if order_id.isdigit() else None
        if order is None or order.shop_id != self.shop.id:
            return None
        return OrderCreated(
            order_id=str(order.id),
            order_name=f"#{1000 + order.id}",
            customer_email=order.email,
            occurred_at=order.created_at,
            lines=(
                OrderLine(
                    line_id=str(order.id * 10),
                    variant=VariantRef(variant_id=str(order.variant_id)),
                    quantity=order.quantity,
                ),
            ),
        )

    def iter_catalog(self, cursor: str | None = None) -> Iterator[CatalogPage]:
        after = int(cursor or 0)
        total = self.session.scalar(
            select(func.count())
            .select_from(SandboxProduct)
            .where(SandboxProduct.shop_id == self.shop.id)
        )
        while True:
            products = list(
                self.session.scalars(
                    select(SandboxProduct)
                    .where(SandboxProduct.shop_id == self.shop.id, SandboxProduct.id > after)
                    .order_by(SandboxProduct.id)
                    .limit(PAGE_SIZE)
                )
            )
            if not products:
                return
            after = products[-1].id
            more = len(products) == PAGE_SIZE
            yield CatalogPage(
                [product_facts(p) for p in products], str(after) if more else None, total
            )
            if not more:
                return

    def push_badges(self, pushes: Sequence[BadgePush]) -> None:
        now = utcnow()
        for push in pushes:
            variant = self._variant(push.variant_platform_id)
            if variant is None:
                continue  # deleted in the store since; nothing to show it on
            variant.badge_state = push.state
            variant.badge_label = push.label
            variant.badge_eta = push.eta
            variant.badge_pushed_at = now
            variant.app_policy = push.enforced_policy

    def _product(self, product_id: str | None) -> SandboxProduct | None:
        if not product_id or not product_id.isdigit():
            return None
        product = self.session.get(SandboxProduct, int(product_id))
        return product if product and product.shop_id == self.shop.id else None

    def _variant(self, variant_id: str | None) -> SandboxVariant | None:
        if not variant_id or not variant_id.isdigit():
            return None
        variant = self.session.get(SandboxVariant, int(variant_id))
        # Like a real platform API: another store's records simply do not exist for this one.
        return variant if variant is not None and variant.shop_id == self.shop.id else None


def product_facts(product: SandboxProduct) -> ProductFacts:
    return ProductFacts(
        platform_id=str(product.id),
        title=product.title,
        variants=tuple(
            VariantFacts(
                platform_id=str(v.id),
                sku=v.sku,
                title=v.title,
                sells_past_zero=v.policy == "continue",
                levels={LOCATION: v.inventory},
            )
            for v in product.variants
        ),
    )
