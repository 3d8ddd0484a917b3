"""The badge API's cached answers are given in front of Flask (plugin/blueprints/
storefront_cached.py): a shopper's page must not be able to tell which path answered, and
nothing but a cached answer may skip the app."""

from __future__ import annotations

from plugin import create_app
from plugin.extensions import db
from tests.conftest import base_env
from tests.helpers import FlaskEntered
from tests.test_badge_api_cache import URL
from tests.test_badge_api_cache import seed as cache_seed


def seed():
    shop, product = cache_seed()
    db.session.commit()
    return URL.format(domain=shop.domain, product=product.platform_id)


def test_a_cached_answer_is_the_views_answer_without_entering_flask(app, client):
    url = seed()
    with FlaskEntered(app) as flask:
        first = client.get(url)  # not cached yet: the view answers, and caches it
        assert flask.count == 1
        again = client.get(url)
        assert flask.count == 1  # answered in front of Flask
    assert first.status_code == again.status_code == 200
    assert again.data == first.data
    assert again.get_json()["variants"]["V2"]["state"] == "backorder"
    assert list(again.headers.items()) == list(first.headers.items())
    assert again.headers["ETag"] and again.headers["Access-Control-Allow-Origin"] == "*"


def test_a_revalidation_gets_the_same_304_either_way(app, client):
    url = seed()
    etag = client.get(url).headers["ETag"]
    app.extensions.pop("badge_answers")  # not cached: the view answers the revalidation
    with FlaskEntered(app) as flask:
        by_view = client.get(url, headers={"If-None-Match": etag})
        assert flask.count == 1
        cached = client.get(url, headers={"If-None-Match": f'"other", W/{etag}'})
        assert flask.count == 1
    assert by_view.status_code == cached.status_code == 304
    assert by_view.data == cached.data == b""
    assert list(cached.headers.items()) == list(by_view.headers.items())


def test_refusals_unknown_shops_and_other_methods_are_the_apps(app, client):
    url = seed()
    client.get(url)  # cached now
    asks = [
        ("GET", "/storefront/v1/badges?shop=&product=P1", 400),
        ("GET", "/storefront/v1/badges?shop=nobody.example&product=P1", 404),
        ("GET", url.replace("P1", "P%00"), 400),
        ("GET", url.replace("P1", "bad id"), 400),
        ("HEAD", url, 200),
        ("POST", url, 405),
    ]
    for method, path, status in asks:
        with FlaskEntered(app) as flask:
            response = client.open(path, method=method)
        assert response.status_code == status, (method, path)
        assert flask.count == 1, (method, path)
        if status == 400:
            assert response.get_json()["error"]


def test_a_committed_change_is_seen_by_the_next_request(app, client):
    url = seed()
    assert client.get(url).get_json()["variants"]["V1"]["state"] == "in_stock"
    client.get(url)  # answered from the cache
    from sqlalchemy import select

    from plugin.models import Variant, VariantBadge

    badge = db.session.scalars(
        select(VariantBadge).join(Variant).where(Variant.platform_id == "V1")
    ).one()
    badge.state, badge.label = "out_of_stock", "Out of stock"
    db.session.commit()
    assert client.get(url).get_json()["variants"]["V1"]["state"] == "out_of_stock"


def test_on_sqlite_every_request_goes_through_the_view(tmp_path):
    sqlite_app = create_app(base_env(DATABASE_URL=f"sqlite:///{tmp_path / 'app.db'}"))
    assert type(sqlite_app.wsgi_app).__name__ != "CachedBadgeAnswers"
