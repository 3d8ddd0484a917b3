"""app-manifest.json is what deploy docs and platform configs are built from: every path in it
must be served by the app, with the method the platform uses."""

import json
import re
from pathlib import Path

import pytest
from werkzeug.exceptions import MethodNotAllowed, NotFound

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = json.loads((ROOT / "app-manifest.json").read_text())
REQUIRED_ROLES = {
    "shopify": {"install", "auth_callback", "app", "webhooks"},
    "bigcommerce": {"auth_callback", "load", "uninstall", "remove_user", "webhooks"},
    "sandbox": {"webhooks"},
}


def all_paths():
    for platform, spec in MANIFEST["platforms"].items():
        for role, path in spec["urls"].items():
            yield f"{platform}.{role}", path, "POST" if role == "webhooks" else "GET"
    for role, path in MANIFEST["storefront"].items():
        yield f"storefront.{role}", path, "GET"


def test_each_platform_declares_scopes_urls_and_webhooks():
    for platform, roles in REQUIRED_ROLES.items():
        spec = MANIFEST["platforms"][platform]
        assert {"scopes", "urls", "webhooks"} <= set(spec)
        assert roles <= set(spec["urls"]), platform
    assert MANIFEST["storefront"]["badge_api"] == "/storefront/v1/badges"


@pytest.mark.parametrize(("role", "path", "method"), list(all_paths()))
def test_every_manifest_path_is_served(app, role, path, method):
    concrete = re.sub(r"<(?:\w+:)?(\w+)>", "1", path)
    adapter = app.url_map.bind("app.test")
    try:
        endpoint, _args = adapter.match(concrete, method=method)
    except (NotFound, MethodNotAllowed) as exc:
        pytest.fail(f"{role} {method} {path} is not served: {exc}")
    assert endpoint != "static" or (ROOT / "static" / concrete.split("/static/", 1)[1]).exists()
    if role.endswith(".webhooks"):
        platform = role.split(".")[0]
        from plugin.platforms import webhook_source

        assert webhook_source(platform).platform == platform
