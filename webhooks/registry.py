"""Platform name → its webhook source. New platforms register here and nowhere else."""

from __future__ import annotations

from webhooks.source import WebhookSource


def _sources() -> dict[str, WebhookSource]:
    from webhooks.bigcommerce import BigCommerceWebhooks
    from webhooks.sandbox import SandboxWebhooks
    from webhooks.shopify import ShopifyWebhooks

    return {
        "sandbox": SandboxWebhooks(),
        "shopify": ShopifyWebhooks(),
        "bigcommerce": BigCommerceWebhooks(),
    }


_SOURCES: dict[str, WebhookSource] | None = None


def source_for(platform: str) -> WebhookSource:
    global _SOURCES
    if _SOURCES is None:
        _SOURCES = _sources()
    try:
        return _SOURCES[platform]
    except KeyError:
        raise LookupError(f"no webhook source for platform {platform!r}") from None


def known_platforms() -> tuple[str, ...]:
    source_for("sandbox")
    assert _SOURCES is not None
    return tuple(_SOURCES)
