"""The theme app extension: layout Shopify CLI expects, escaped and accessible output, and
Shopify's theme-check with no errors."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib

import pytest

from connectors.shopify import queries
from plugin import ROOT

EXTENSION = ROOT / "extensions" / "backorder-badge"
LIQUID = sorted([*EXTENSION.glob("blocks/*.liquid"), *EXTENSION.glob("snippets/*.liquid")])
SAFE_OUTPUTS = re.compile(
    r"^(product\.id|variant\.id|current\.id|item\.variant_id|block\.shopify_attributes"
    r"|block\.settings\.\w+)$"
)


def schema_of(path) -> dict:
    text = path.read_text()
    return json.loads(text.split("{% schema %}")[1].split("{% endschema %}")[0])


def test_layout_is_a_theme_extension():
    config = tomllib.loads((EXTENSION / "shopify.extension.toml").read_text())
    assert config["type"] == "theme"
    assert json.loads((EXTENSION / "locales" / "en.default.json").read_text())
    block = schema_of(EXTENSION / "blocks" / "backorder_badge.liquid")
    embed = schema_of(EXTENSION / "blocks" / "backorder_embed.liquid")
    assert block["target"] == "section"
    assert block["enabled_on"] == {"templates": ["product"]}
    assert embed["target"] == "body"
    for schema in (block, embed):
        assert (EXTENSION / "assets" / schema["stylesheet"]).is_file()
        assert (EXTENSION / "assets" / schema["javascript"]).is_file()


def test_badge_reads_the_app_owned_metafields_the_connector_writes():
    snippet = (EXTENSION / "snippets" / "backorder-badge.liquid").read_text()
    assert queries.METAFIELD_NAMESPACE == "$app:backorder"
    # The selected variant's, every variant's, and the shop's (labels per language, colours).
    assert snippet.count(f"metafields['{queries.METAFIELD_NAMESPACE}']") == 3
    # The cart notice: the cart lines' variants and the shop's.
    cart = (EXTENSION / "snippets" / "backorder-cart.liquid").read_text()
    assert "item.variant.metafields['$app:backorder']" in cart
    assert f"shop.metafields['{queries.METAFIELD_NAMESPACE}'].{queries.KEY_STOREFRONT}" in cart
    assert f"shop.metafields['{queries.METAFIELD_NAMESPACE}'].{queries.KEY_STOREFRONT}" in snippet
    assert "request.locale.iso_code" in snippet
    assert "variant_badge.state.value" in snippet and "variant_badge.eta.value" in snippet
    label = (EXTENSION / "snippets" / "backorder-label.liquid").read_text()
    for key in queries.METAFIELD_TYPES:
        assert f"badge.{key}.value" in label


@pytest.mark.parametrize("path", LIQUID, ids=lambda p: p.name)
def test_every_output_is_escaped(path):
    outputs = re.findall(r"{{-?\s*(.*?)\s*-?}}", path.read_text(), re.S)
    if path.name == "backorder-label.liquid":
        # It only feeds a capture: every caller escapes what it captured.
        for caller in path.parent.glob("*.liquid"):
            text = caller.read_text()
            rendered = len(re.findall(r"render 'backorder-label'", text))
            captured = len(
                re.findall(r"capture \w+\s*(?:-?%}\s*{%-?)?\s*render 'backorder-label'", text)
            )
            assert rendered == captured, caller.name
        return
    assert outputs or path.parent.name == "blocks"
    for expression in outputs:
        filters = [f.strip().split(":")[0] for f in expression.split("|")[1:]]
        value = expression.split("|")[0].strip()
        assert SAFE_OUTPUTS.match(value) or {"escape", "json", "t"} & set(filters), expression


def test_badge_is_text_announced_and_switches_without_calling_the_app():
    snippet = (EXTENSION / "snippets" / "backorder-badge.liquid").read_text()
    assert 'role="status"' in snippet and 'aria-live="polite"' in snippet
    assert '<span class="backorder-badge__label">{{ label | escape }}</span>' in snippet
    assert 'class="backorder-badge__icon" aria-hidden="true"' in snippet
    assert re.search(r'<script\s+type="application/json"\s+data-backorder-badge-variants=', snippet)
    script = (EXTENSION / "assets" / "backorder-badge.js").read_text()
    assert "textContent" in script and "innerHTML" not in script
    # Its only requests are the store's own pages (relative URLs rendered by Liquid: the
    # product's and the cart's), never the app nor its proxy.
    for call in ("XMLHttpRequest", "sendBeacon", "http", "/apps/"):
        assert call not in script
    assert "credentials: 'same-origin'" in script


def test_theme_check_passes_with_no_errors():
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "@shopify" / "theme-check-node").is_dir():
        pytest.skip("theme-check not installed here: run `npm ci` (CI runs it as its own step)")
    result = subprocess.run(
        [node, "tools/theme-check.mjs", "extensions/backorder-badge"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 offense(s)" in result.stdout
