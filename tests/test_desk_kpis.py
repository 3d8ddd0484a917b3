"""Support desk KPIs on a seeded ledger whose answers are worked out by hand below.

The shop is in Europe/Paris (UTC+1 in early March 2026, before the clocks change on the 29th).
The period is 2 to 8 March 2026, both included: [2026-03-01 23:00 UTC, 2026-03-08 23:00 UTC).

Orders placed in the period (local times):
  o1  2 Mar 10:00  Tee Red / L   4 units, 2 backordered (line A), shipped 5 Mar 10:00
  o2  3 Mar 08:00  Tee Red / M   3 units, 3 backordered (line B), shipped 4 Mar 20:00
  o3  3 Mar 12:00  Tee Blue / L  1 unit,  1 backordered (line C), shipped 5 Mar 00:30
  o4  4 Mar 12:00  Tee Red / M   1 unit,  1 backordered (line F), shipped 7 Mar 00:00
  o5  6 Mar 09:00  Tee Blue / M  5 units, 4 backordered (line D), 3 of them cancelled, 1 open
  o6  7 Mar 09:00  Tee Red / S  10 units, none backordered
Outside it: o0 (20 Feb 12:00, 2 backordered, line E, shipped 6 Mar 12:00 in the period),
oh (10 Feb, a Hoodie Green / L line: 2 open and 1 allocated), o9 (9 Mar, after the period:
Tee Red / L, 7 units all open),
and another shop's 100-unit order on 3 Mar (never counted).

- units ordered 4+3+1+1+5+10 = 24; backordered 2+3+1+1+4 = 11: backorder rate 11/24 = 45.8 %;
- cancelled 3 of those 11: cancellation rate 27.3 %;
- lines shipped in the period, days from order to shipment: B 1.5 (36 h), C 1.5208 (36.5 h),
  F 2.5, A 3.0, E 14.0; n = 5: the median is the 3rd value, 2.5; the 90th percentile sits at
  rank (5-1) x 0.9 = 3.6: 3.0 + 0.6 x (14.0 - 3.0) = 9.6 days;
- promised dates: A 5 Mar (shipped 5 Mar: on time, 2 units), B 4 Mar (shipped 4 Mar 20:00: on
  time, 3 units), C 4 Mar (shipped 5 Mar 00:30 Paris, which is still 4 Mar in UTC: late, 1
  unit), E 1 Mar (late, 2 units), F none (left out, 1 unit): on time 5 of 8 units = 62.5 %;
- owed now: Tee 8 (D 1, o9 7), Hoodie 3 (H); option 1: Red 7, Green 3, Blue 1; option 2: L 10
  (7 + 3), M 1.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from plugin.extensions import db
from plugin.models import (
    BackorderLine,
    BackorderStatus,
    Order,
    OrderLine,
    Platform,
    Variant,
    VariantBadge,
)
from plugin.services import desk_kpis
from tests import factories

PARIS = ZoneInfo("Europe/Paris")
PERIOD = "start=2026-03-02&end=2026-03-08"


def paris(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=PARIS).astimezone(UTC)


def _variants(owner):
    tee = factories.product(
        owner,
        "p-tee",
        "Tee",
        [
            {"platform_id": f"v-{title}", "sku": f"TEE-{title}", "title": title}
            for title in ("Red / L", "Red / M", "Blue / L", "Blue / M", "Red / S")
        ],
    )
    hoodie = factories.product(
        owner,
        "p-hood",
        "Hoodie",
        [{"platform_id": "v-hood", "sku": "HOOD-GL", "title": "Green / L"}],
    )
    by_title = {v.title: v for v in tee.variants}
    by_title["Green / L"] = hoodie.variants[0]
    return by_title


def _line(owner, variant, order_id, placed, ordered, backordered, **state) -> BackorderLine:
    """An order of `ordered` units of which `backordered` went on backorder; `state` sets the
    line's quantities, times and promise (all units open unless said otherwise)."""
    made = factories.order(owner, order_id, [(variant, ordered)], placed_at=placed)
    line = BackorderLine(
        shop_id=owner.id,
        variant_id=variant.id,
        order_line_id=made.lines[0].id,
        ordered_at=placed,
        opened_at=placed,
        quantity=backordered,
        open_quantity=state.pop("open_quantity", 0 if state else backordered),
        **state,
    )
    db.session.add(line)
    db.session.commit()
    return line


def _shipped(units: int, at: datetime, promised: date | None = None) -> dict:
    return {
        "fulfilled_quantity": units,
        "fulfilled_at": at,
        "status": BackorderStatus.FULFILLED,
        "promised_eta": promised,
    }


@pytest.fixture
def ledger(app):
    owner = factories.shop(timezone="Europe/Paris")
    v = _variants(owner)
    _line(
        owner, v["Red / L"], "o1", paris(2, 10), 4, 2, **_shipped(2, paris(5, 10), date(2026, 3, 5))
    )
    _line(
        owner, v["Red / M"], "o2", paris(3, 8), 3, 3, **_shipped(3, paris(4, 20), date(2026, 3, 4))
    )
    _line(
        owner,
        v["Blue / L"],
        "o3",
        paris(3, 12),
        1,
        1,
        **_shipped(1, paris(5, 0, 30), date(2026, 3, 4)),
    )
    _line(owner, v["Red / M"], "o4", paris(4, 12), 1, 1, **_shipped(1, paris(7, 0)))
    _line(
        owner,
        v["Blue / M"],
        "o5",
        paris(6, 9),
        5,
        4,
        open_quantity=1,
        cancelled_quantity=3,
        cancelled_at=paris(6, 15),
        status=BackorderStatus.OPEN,
    )
    factories.order(owner, "o6", [(v["Red / S"], 10)], placed_at=paris(7, 9))
    _line(
        owner,
        v["Red / L"],
        "o0",
        paris(20, 12, month=2),
        2,
        2,
        **_shipped(2, paris(6, 12), date(2026, 3, 1)),
    )
    _line(
        owner,
        v["Green / L"],
        "oh",
        paris(10, 12, month=2),
        3,
        3,
        open_quantity=2,
        allocated_quantity=1,
        status=BackorderStatus.OPEN,
    )
    _line(owner, v["Red / L"], "o9", paris(9, 10), 7, 7)
    for n, status in enumerate(("active", "active", "pending")):
        factories.notify_subscription(v["Red / L"], f"w{n}@example.com", status=status)
    factories.notify_subscription(v["Blue / M"], "done@example.com", status="alerted")
    # Another shop's order on the same day: never counted.
    other = factories.shopify_shop("other-shop.myshopify.com")
    ov = factories.product(other, "p-o", "Other", [{"platform_id": "v-o", "title": "Red / L"}])
    _line(other, ov.variants[0], "x1", paris(3, 10), 100, 50)
    return owner


def test_the_figures_are_the_ones_worked_out_by_hand(ledger):
    period = desk_kpis.parse_period({"start": "2026-03-02", "end": "2026-03-08"}, "Europe/Paris")
    assert period.bounds("Europe/Paris") == (
        datetime(2026, 3, 1, 23, tzinfo=UTC),
        datetime(2026, 3, 8, 23, tzinfo=UTC),
    )
    kpis = desk_kpis.compute(db.session, ledger, period)
    assert (kpis.ordered_units, kpis.backordered_units) == (24, 11)
    assert kpis.backorder_rate == pytest.approx(11 / 24)
    assert (kpis.cancelled_units, kpis.cancellation_rate) == (3, pytest.approx(3 / 11))
    assert kpis.fulfilled_lines == 5
    assert kpis.cycle_median_days == pytest.approx(2.5)
    assert kpis.cycle_p90_days == pytest.approx(9.6)
    assert (kpis.promised_units, kpis.on_time_units, kpis.unpromised_units) == (8, 5, 1)
    assert kpis.on_time_rate == pytest.approx(0.625)
    assert kpis.owed_units == 11
    assert kpis.owed_by_product == [("Tee", 8), ("Hoodie", 3)]
    assert kpis.owed_by_option == [
        (1, "Red", 7),
        (1, "Green", 3),
        (1, "Blue", 1),
        (2, "L", 10),
        (2, "M", 1),
    ]
    assert kpis.notify_demand == [("Tee", "Red / L", "TEE-Red / L", 3, 2)]
    daily = {day.day: (ordered, backordered) for day, ordered, backordered in kpis.daily}
    assert daily == {2: (4, 2), 3: (4, 4), 4: (1, 1), 5: (0, 0), 6: (5, 4), 7: (10, 0), 8: (0, 0)}
    assert [(label, n) for label, n in kpis.cycle_histogram if n] == [
        ("1-2 days", 2),
        ("2-3 days", 1),
        ("3-4 days", 1),
        ("14-15 days", 1),
    ]


def test_the_page_shows_them_and_the_csv_holds_them(ledger, client):
    page = client.get(f"/sandbox/desk/kpis?{PERIOD}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    for shown in ("45.8%", "27.3%", "62.5%", "2.5 days", "9.6 days", "11 of 24 units ordered"):
        assert shown in text, shown
    assert "(opened while the badge showed none), not in the on-time rate: 1." in text
    assert 'src="/static/vendor/uplot/uPlot.iife.min.js"' in text  # served by the app, no CDN

    answer = client.get(f"/sandbox/desk/kpis/daily.csv?{PERIOD}")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert "kpis-daily-" in answer.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(answer.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0] == ["Day", "Units ordered", "Units backordered"]
    assert ["2026-03-06", "5", "4"] in rows and len(rows) == 8

    summary = client.get(f"/sandbox/desk/kpis/summary.csv?{PERIOD}").get_data(as_text=True)
    summary = dict(csv.reader(io.StringIO(summary.lstrip("\ufeff"))))
    assert summary["Backorder rate (%)"] == "45.8"
    assert summary["Cycle time, 90th percentile (days)"] == "9.6"
    assert summary["On-time rate (%)"] == "62.5"
    assert summary["Cancellation rate (%)"] == "27.3"

    options = client.get("/sandbox/desk/kpis/owed_by_option.csv?period=7").get_data(as_text=True)
    assert list(csv.reader(io.StringIO(options.lstrip("\ufeff"))))[1:] == [
        ["1", "Red", "7"],
        ["1", "Green", "3"],
        ["1", "Blue", "1"],
        ["2", "L", "10"],
        ["2", "M", "1"],
    ]
    demand = client.get("/sandbox/desk/kpis/notify_demand.csv").get_data(as_text=True)
    assert "Tee,Red / L,TEE-Red / L,3,2" in demand


def test_a_period_with_cancellations_only(ledger):
    period = desk_kpis.parse_period({"start": "2026-03-06", "end": "2026-03-06"}, "Europe/Paris")
    kpis = desk_kpis.compute(db.session, ledger, period)
    assert (kpis.ordered_units, kpis.backordered_units, kpis.cancelled_units) == (5, 4, 3)
    assert kpis.cancellation_rate == pytest.approx(0.75)
    # Line E shipped that day (ordered on 20 Feb): 14 days, late.
    assert (kpis.fulfilled_lines, kpis.cycle_median_days, kpis.cycle_p90_days) == (1, 14.0, 14.0)
    assert kpis.on_time_rate == 0.0


def test_an_empty_period_says_so(ledger, client):
    period = desk_kpis.parse_period({"start": "2025-01-01", "end": "2025-01-31"}, "Europe/Paris")
    kpis = desk_kpis.compute(db.session, ledger, period)
    assert kpis.empty
    assert (kpis.backorder_rate, kpis.cancellation_rate, kpis.on_time_rate) == (None, None, None)
    assert (kpis.cycle_median_days, kpis.cycle_p90_days, kpis.cycle_histogram) == (None, None, [])
    page = client.get("/sandbox/desk/kpis?start=2025-01-01&end=2025-01-31")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "No orders were placed and no backordered line was fulfilled in this period." in text
    assert "No backordered line was fulfilled in this period." in text
    assert "Units owed now" in text  # what is owed now does not depend on the period


@pytest.mark.parametrize(
    "query",
    [
        "period=14",
        "period=abc",
        "start=2026-03-08&end=2026-03-02",
        "start=2026-13-01&end=2026-03-02",
        "start=2026-03-01",
        "start=2024-01-01&end=2026-03-01",
        "period=7&start=2026-03-01&end=2026-03-02",
    ],
)
def test_bad_period_arguments_are_refused(app, client, query):
    factories.shop(timezone="Europe/Paris")
    page = client.get(f"/sandbox/desk/kpis?{query}")
    assert page.status_code == 400
    assert 'role="alert"' in page.get_data(as_text=True)
    assert client.get(f"/sandbox/desk/kpis/daily.csv?{query}").status_code == 400


def test_an_unknown_table_is_not_found(app, client):
    factories.shop()
    assert client.get("/sandbox/desk/kpis/orders.csv").status_code == 404


def test_presets_are_the_last_days_today_included(app):
    now = datetime(2026, 3, 10, 23, 30, tzinfo=UTC)  # 11 March already in Paris
    period = desk_kpis.parse_period({"period": "7"}, "Europe/Paris", now)
    assert (period.start, period.last_day, period.days) == (date(2026, 3, 5), date(2026, 3, 11), 7)
    assert desk_kpis.parse_period({}, "Europe/Paris", now).days == 30


# --- the promised date: set once, when a line first goes on backorder ----------------------------


def test_a_line_keeps_the_date_first_promised(app):
    owner = factories.shop(timezone="Europe/Paris")
    factories.sandbox_product(owner, "Tee", [("Medium", "TEE-M", 0, "continue")])
    variant = db.session.query(Variant).filter_by(shop_id=owner.id).one()
    first_eta = db.session.get(VariantBadge, variant.id).eta
    assert first_eta is not None  # the sandbox's default lead time gives the badge a date

    _order, hooks = factories.sandbox_order(owner, _sandbox_variant(owner), 1)
    from plugin.services import sandbox_store

    assert sandbox_store.deliver(owner, hooks) == [200] * len(hooks)
    db.session.expire_all()
    (line,) = db.session.query(BackorderLine).filter_by(shop_id=owner.id).all()
    assert line.promised_eta == first_eta

    # The ETA moves later; the line still remembers the first date, a new line gets the new one.
    # (the merchant sets a later date: the badge is decided again, as the Variants page does)
    from plugin.services.badging import refresh_badge

    variant.eta_override = first_eta + timedelta(days=9)
    assert refresh_badge(db.session, owner, variant, cause="settings") is not None
    db.session.commit()
    assert db.session.get(VariantBadge, variant.id).eta == first_eta + timedelta(days=9)
    _order, hooks = factories.sandbox_order(owner, _sandbox_variant(owner), 2, "b@example.com")
    assert sandbox_store.deliver(owner, hooks) == [200] * len(hooks)
    db.session.expire_all()
    lines = db.session.query(BackorderLine).filter_by(shop_id=owner.id).order_by(BackorderLine.id)
    assert [line.promised_eta for line in lines] == [first_eta, first_eta + timedelta(days=9)]


def _sandbox_variant(owner) -> int:
    from plugin.models import SandboxVariant

    return db.session.query(SandboxVariant).filter_by(shop_id=owner.id).one().id


def test_only_a_shops_own_rows_count(ledger):
    other = factories.shop("x.sandbox.local", Platform.SANDBOX)
    kpis = desk_kpis.compute(db.session, other, desk_kpis.parse_period({"period": "90"}, None))
    assert (kpis.ordered_units, kpis.owed_units, kpis.notify_demand) == (0, 0, [])
    assert db.session.query(Order).count() > 0 and db.session.query(OrderLine).count() > 0


# --- in Chromium: the charts are drawn from the vendored uPlot, beside their tables --------------


@pytest.fixture
def live_url(app):
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.mark.browser
def test_the_kpi_page_draws_its_charts_in_chromium(ledger, live_url):
    import shutil
    from pathlib import Path

    playwright = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        pytest.skip("Chromium is not installed")
    artifacts = Path(__file__).resolve().parent / "artifacts"
    artifacts.mkdir(exist_ok=True)
    outside: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on(
            "request",
            lambda r: outside.append(r.url) if not r.url.startswith(live_url) else None,
        )
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{live_url}/sandbox/desk/kpis?{PERIOD}")
        # uPlot draws one canvas per chart: daily, cycle time, owed per product.
        page.wait_for_function("document.querySelectorAll('.uplot canvas').length === 3")
        assert page.locator("#chart-daily .u-legend").inner_text().count("Units") == 2
        page.screenshot(path=str(artifacts / "desk-kpis.png"), full_page=True)
        browser.close()
    assert errors == [] and outside == []
