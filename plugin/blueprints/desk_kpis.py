"""Support desk: backorder KPIs over a period, with charts, tables and CSV exports.

`?period=7|30|90` (the last N days, today included) or `?start=YYYY-MM-DD&end=YYYY-MM-DD` (both
days included), in the shop's zone. The figures are `plugin.services.desk_kpis`'s; every chart
has its numbers in a table beside it, and every table exports to `/kpis/<table>.csv` with the
same period arguments.
"""

from __future__ import annotations

from flask import Response, abort, request

from plugin.blueprints.desk import Desk, desk_route, render
from plugin.extensions import db
from plugin.services import desk_kpis as service


@desk_route("/kpis")
def kpis(desk: Desk):
    try:
        period = service.parse_period(request.args, desk.shop.timezone)
    except service.PeriodRefused as exc:
        return render(desk, "desk/kpis.html", 400, error=str(exc), kpis=None, args=request.args)
    figures = service.compute(db.session, desk.shop, period)
    tables = {name: service.table(figures, name) for name in service.TABLES}
    charts = {
        "daily": {
            "x": [day.isoformat() for day, _o, _b in figures.daily],
            "ordered": [ordered for _d, ordered, _b in figures.daily],
            "backordered": [backordered for _d, _o, backordered in figures.daily],
        },
        "cycle": {
            "labels": [label for label, _n in figures.cycle_histogram],
            "lines": [lines for _label, lines in figures.cycle_histogram],
        },
        "owed": {
            "labels": [title for title, _u in figures.owed_by_product[:10]],
            "units": [units for _t, units in figures.owed_by_product[:10]],
        },
    }
    return render(
        desk,
        "desk/kpis.html",
        kpis=figures,
        tables=tables,
        charts=charts,
        period=period,
        presets=service.PRESETS,
        top=service.TOP,
        args=request.args,
    )


@desk_route("/kpis/<table>.csv")
def kpis_csv(desk: Desk, table: str):
    if table not in service.TABLES:
        abort(404)
    try:
        period = service.parse_period(request.args, desk.shop.timezone)
    except service.PeriodRefused as exc:
        return Response(str(exc), status=400, mimetype="text/plain")
    figures = service.compute(db.session, desk.shop, period)
    response = Response(service.export_csv(figures, table), mimetype="text/csv")
    filename = service.export_filename(desk.shop, table, period)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
