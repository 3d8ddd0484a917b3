"""Dev pages of the local sandbox store: catalogue, checkout, settings and a product page.

Off in production unless SANDBOX_ENABLED=1. Each store action commits the store's own change,
then sends the store's signed webhooks to the app, like a real platform would.
"""

from __future__ import annotations

import re

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    has_request_context,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from plugin import i18n
from plugin.extensions import db
from plugin.services import (
    badge_labels,
    customer_links,
    mail_template_form,
    mail_templates,
    notify_settings,
    notify_waitlist,
    sandbox_admin,
    sandbox_store,
    settings_form,
)
from plugin.services.badge_api import badges_for
from plugin.services.sandbox_store import SandboxError

bp = Blueprint("sandbox", __name__, url_prefix="/sandbox")
POLL_SECONDS = 3
# The merchant's side of the sandbox: its pages speak `?lang=` (else the browser's language).
ADMIN_ENDPOINTS = frozenset(
    f"sandbox.{name}"
    for name in (
        "overview",
        "settings",
        "variants",
        "variants_bulk",
        "emails",
        "outbox",
        "send_due",
        "variant_csv_import",
        "variant_csv_apply",
    )
)


@bp.url_defaults
def _keep_language(endpoint: str, values: dict) -> None:
    """A language chosen with `?lang=` stays on the admin pages' links, forms and redirects."""
    if not has_request_context() or request.endpoint not in ADMIN_ENDPOINTS:
        return
    if endpoint in ADMIN_ENDPOINTS and "lang" not in values:
        language = i18n.query_language("lang")
        if language:
            values["lang"] = language


@bp.before_request
def _only_when_enabled():
    if not current_app.extensions["settings"].sandbox_enabled:
        abort(404)


def _shop():
    shop = sandbox_store.ensure_shop(db.session)
    db.session.commit()
    return shop


def _send(shop, hooks) -> None:
    statuses = sandbox_store.deliver(shop, hooks)
    refused = [s for s in statuses if s != 200]
    if refused:
        flash(f"The app refused {len(refused)} webhook(s) (HTTP {refused[0]}).", "error")


@bp.get("/")
def admin():
    shop = _shop()
    products = sandbox_store.list_products(db.session, shop)
    return render_template(
        "sandbox/admin.html",
        shop=shop,
        products=products,
        overview=sandbox_admin.overview(db.session, shop, products),
        when=lambda moment: sandbox_admin.format_moment(moment, shop.timezone),
        flags=customer_links.merchant_flags,
        waitlist=notify_waitlist.waitlist(db.session, shop, limit=WAITLIST_ROWS),
    )


WAITLIST_ROWS = 200


@bp.get("/waitlist.csv")
def waitlist_csv():
    """Every notify-me sign-up still waiting (?all=1: alerted and unsubscribed ones too)."""
    from plugin.models import utcnow

    shop = _shop()
    body = notify_waitlist.export_csv(db.session, shop, everyone=request.args.get("all") == "1")
    response = Response(body, mimetype="text/csv")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{notify_waitlist.export_filename(shop, utcnow())}"'
    )
    return response


def _parse_variant_lines(text: str) -> list[tuple[str, str, int, str]]:
    variants = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        parts = [p.strip() for p in raw.split(",")]
        if len(parts) != 4:
            raise SandboxError(f"Line {number}: expected 'title, sku, stock, deny|continue'.")
        title, sku, stock, policy = parts
        inventory = _bounded(stock, -MAX_UNITS, MAX_UNITS)
        if inventory is None and re.fullmatch(r"[+-]?[0-9]+", stock):
            raise SandboxError(
                f"Line {number}: stock must be between {-MAX_UNITS:,} and {MAX_UNITS:,}."
            )
        if inventory is None:
            raise SandboxError(f"Line {number}: stock must be a whole number.")
        variants.append((title, sku, inventory, policy))
    return variants


def _store_action(action, redirect_to: str):
    """Run one store action: commit it and send its webhooks, or show why it was refused.

    `action(shop)` returns (webhooks, success message) or raises SandboxError, in which case
    nothing is kept.
    """
    shop = _shop()
    try:
        hooks, message = action(shop)
    except SandboxError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(redirect_to)
    db.session.commit()
    _send(shop, hooks)
    flash(message, "ok")
    return redirect(redirect_to)


# Stock, units and quantities a test store could plausibly need, kept far inside the INTEGER
# columns they are added up in; ids are the columns' own range.
MAX_UNITS = 1_000_000
WHOLE_RANGES = {"variant_id": (1, 2**31 - 1)}
WHOLE_LABELS = {"inventory": "Stock", "variant_id": "The variant"}


def _bounded(raw: str, low: int, high: int) -> int | None:
    """The whole number typed, if it is one within [low, high]: digits only (int() alone would
    take "1_000" or thousands of digits), surrounding spaces ignored."""
    text = str(raw).strip()
    if not re.fullmatch(r"[+-]?[0-9]{1,10}", text):
        return None
    value = int(text)
    return value if low <= value <= high else None


def _whole_number(name: str, default: str = "") -> int:
    low, high = WHOLE_RANGES.get(name, (-MAX_UNITS, MAX_UNITS))
    value = _bounded(request.form.get(name, default), low, high)
    if value is None:
        label = WHOLE_LABELS.get(name, name.capitalize())
        if re.fullmatch(r"[+-]?[0-9]+", str(request.form.get(name, default)).strip()):
            raise SandboxError(f"{label} must be between {low:,} and {high:,}; nothing changed.")
        raise SandboxError(f"{label} must be a whole number; nothing changed.")
    return value


@bp.post("/products")
def create_product():
    def action(shop):
        variants = _parse_variant_lines(request.form.get("variants", ""))
        product, hooks = sandbox_store.create_product(
            db.session, shop, request.form.get("title", ""), variants
        )
        return hooks, f"Added {product.title}."

    return _store_action(action, url_for(".admin"))


@bp.post("/products/<int:product_id>/variants")
def add_variant(product_id: int):
    def action(shop):
        title = request.form.get("title", "")
        hooks = sandbox_store.add_variant(
            db.session,
            shop,
            product_id,
            title,
            request.form.get("sku", ""),
            _whole_number("inventory", "0"),
            request.form.get("policy", "deny"),
        )
        return hooks, f"Added variant {title.strip()}."

    return _store_action(action, url_for(".admin"))


@bp.post("/variants/<int:variant_id>/inventory")
def set_inventory(variant_id: int):
    def action(shop):
        hooks = sandbox_store.set_inventory(
            db.session,
            shop,
            variant_id,
            _whole_number("inventory"),
            request.form.get("policy") or None,
        )
        variant = sandbox_store.get_variant(db.session, shop, variant_id)
        return hooks, f"Saved {variant.title}: {variant.inventory} available."

    return _store_action(action, url_for(".admin") + f"#variant-{variant_id}")


@bp.post("/variants/<int:variant_id>/receive")
def receive_stock(variant_id: int):
    def action(shop):
        units = _whole_number("units")
        hooks = sandbox_store.receive_stock(db.session, shop, variant_id, units)
        variant = sandbox_store.get_variant(db.session, shop, variant_id)
        return hooks, (
            f"Received {_units(units)} of {variant.title}; "
            f"{sandbox_store.on_hand(db.session, shop, variant)} on hand."
        )

    return _store_action(action, url_for(".admin") + f"#variant-{variant_id}")


@bp.get("/checkout")
def checkout():
    """The store's checkout for one line: what the shopper is about to order and, for a
    variant on backorder, when it ships (the badge in the shopper's language, `?lang=`), before
    they place the order."""
    shop = _shop()
    variant_id = _bounded(request.args.get("variant_id", ""), *WHOLE_RANGES["variant_id"])
    quantity = _bounded(request.args.get("quantity", "1"), 1, MAX_UNITS)
    try:
        variant = sandbox_store.get_variant(db.session, shop, variant_id or 0)
    except SandboxError:
        abort(404)
    if quantity is None:
        abort(400)
    language = (request.args.get("lang") or "")[:35]
    locale = language if badge_labels.language_of(language) else None
    badge = badges_for(db.session, shop, [str(variant.id)], None, locale)[str(variant.id)]
    return render_template(
        "sandbox/checkout.html",
        shop=shop,
        variant=variant,
        quantity=quantity,
        email=(request.args.get("email") or "").strip()[:255],
        badge=badge,
        language=language,
        notice_lang=locale,
    )


@bp.post("/orders")
def place_order():
    next_url = request.form.get("next") or url_for(".admin")
    if not next_url.startswith("/sandbox/"):
        next_url = url_for(".admin")

    def action(shop):
        order, hooks = sandbox_store.place_order(
            db.session,
            shop,
            _whole_number("variant_id"),
            _whole_number("quantity", "1"),
            (request.form.get("email") or "").strip(),
        )
        return hooks, f"Order {sandbox_store.order_name(order)} placed."

    return _store_action(action, next_url)


def _order_url(order_id: int) -> str:
    return url_for(".admin") + f"#order-{order_id}"


def _units(count: int) -> str:
    return f"{count} unit" if count == 1 else f"{count} units"


@bp.post("/orders/<int:order_id>/cancel")
def cancel_order(order_id: int):
    def action(shop):
        restocked, hooks = sandbox_store.cancel_order(db.session, shop, order_id)
        order = sandbox_store.get_order(db.session, shop, order_id)
        return hooks, (
            f"Order {sandbox_store.order_name(order)} cancelled; {_units(restocked)} back in stock."
        )

    return _store_action(action, _order_url(order_id))


@bp.post("/orders/<int:order_id>/quantity")
def edit_order(order_id: int):
    def action(shop):
        quantity = _whole_number("quantity")
        removed, hooks = sandbox_store.edit_quantity(db.session, shop, order_id, quantity)
        name = sandbox_store.order_name(sandbox_store.get_order(db.session, shop, order_id))
        if quantity == 0:
            return hooks, f"Line removed from order {name}; {_units(removed)} back in stock."
        return hooks, f"Order {name} now has {_units(quantity)}; {_units(removed)} back in stock."

    return _store_action(action, _order_url(order_id))


@bp.post("/orders/<int:order_id>/refund")
def refund_order(order_id: int):
    def action(shop):
        units = _whole_number("units")
        hooks = sandbox_store.refund_units(db.session, shop, order_id, units)
        name = sandbox_store.order_name(sandbox_store.get_order(db.session, shop, order_id))
        return hooks, f"Refunded {_units(units)} of order {name}; back in stock."

    return _store_action(action, _order_url(order_id))


@bp.post("/orders/<int:order_id>/ship")
def ship_order(order_id: int):
    def action(shop):
        units = _whole_number("units") if request.form.get("units", "").strip() else None
        shipped, hooks = sandbox_store.ship_order(db.session, shop, order_id, units)
        order = sandbox_store.get_order(db.session, shop, order_id)
        left = sandbox_store.unshipped(order)
        rest = f"; {_units(left)} still to ship." if left else "; fully shipped."
        return hooks, f"Shipped {_units(shipped)} of order {sandbox_store.order_name(order)}{rest}"

    return _store_action(action, _order_url(order_id))


@bp.route("/settings", methods=["GET", "POST"])
def settings():
    shop = _shop()
    session = db.session
    if request.method == "GET":
        values, errors = settings_form.form_values(shop), {}
    else:
        submission, changed = settings_form.save(session, shop, request.form)
        if submission.ok:
            flash(_("Settings saved. %(num)s badge(s) updated.", num=changed), "ok")
            return redirect(url_for(".settings"))
        values, errors = settings_form.submitted_values(request.form), submission.errors
    status = 422 if errors else 200
    return (
        render_template(
            "sandbox/settings.html",
            shop=shop,
            values=values,
            errors=errors,
            location_options=settings_form.shop_locations(session, shop),
            action=url_for(".settings"),
            variants_url=url_for(".variants"),
            mail_templates_url=url_for(".emails"),
            notify=notify_settings.page_context(shop),
        ),
        status,
    )


@bp.route("/emails", methods=["GET", "POST"])
def emails():
    """The customer-mail template editor: wording per kind and language, with a preview."""
    shop = _shop()
    if request.method == "GET":
        edit = mail_template_form.load(
            db.session, shop, request.args.get("kind"), request.args.get("language")
        )
    else:
        edit = mail_template_form.submit(db.session, shop, request.form)
        if edit.saved:
            flash("Wording saved." if edit.custom else "Default wording restored.", "ok")
            return redirect(url_for(".emails", kind=edit.kind, language=edit.language))
    return (
        render_template(
            "sandbox/emails.html",
            shop=shop,
            edit=edit,
            kinds=mail_templates.KIND_LABELS,
            languages=mail_templates.LANGUAGES,
            variables=[
                (name, mail_template_form.VARIABLE_HELP[name])
                for name in mail_templates.VARIABLES[edit.kind]
            ],
            custom=mail_template_form.overview(db.session, shop),
            action=url_for(".emails"),
            link=lambda kind, language: url_for(".emails", kind=kind, language=language),
        ),
        422 if request.method == "POST" and not edit.ok else 200,
    )


OUTBOX_PAGE_SIZE = 100


@bp.get("/outbox")
def outbox():
    """Every customer mail the store's customers were sent (or will be), newest first, each as
    the customer would see it: with no SMTP_URL, this page is where the mails go."""
    from sqlalchemy import func, select

    from plugin.models import OutboxMail, utcnow
    from plugin.services.mail_templates import KIND_LABELS

    shop = _shop()
    mails = list(
        db.session.scalars(
            select(OutboxMail)
            .where(OutboxMail.shop_id == shop.id)
            .order_by(OutboxMail.id.desc())
            .limit(OUTBOX_PAGE_SIZE)
        )
    )
    counts = dict(
        db.session.execute(
            select(OutboxMail.status, func.count())
            .where(OutboxMail.shop_id == shop.id)
            .group_by(OutboxMail.status)
        ).all()
    )
    return render_template(
        "sandbox/outbox.html",
        shop=shop,
        mails=mails,
        counts=counts,
        total=sum(counts.values()),
        smtp=bool(current_app.extensions["settings"].smtp_url),
        now=utcnow(),
        kind_labels=KIND_LABELS,
        when=lambda moment: sandbox_admin.format_moment(moment, shop.timezone),
    )


@bp.post("/outbox/send-due")
def send_due():
    """Run what the clock would for the sandbox store (never for another shop): back-in-stock
    batches that are due, then the mails whose quiet period is over."""
    from plugin.jobs import queue_due_restocks, queue_mails
    from plugin.services.outbox import due_mail_ids

    shop = _shop()
    batches = queue_due_restocks(shop.id)
    ids = due_mail_ids(db.session, shop_id=shop.id)
    queue_mails(ids)
    message = f"Queued {len(ids)} due mail(s)."
    if batches:
        message += f" Sent {batches} back-in-stock alert batch(es) that were due."
    flash(message, "ok")
    return redirect(url_for(".outbox"))


@bp.get("/products/<int:product_id>")
def product_page(product_id: int):
    shop = _shop()
    product = next(
        (p for p in sandbox_store.list_products(db.session, shop) if p.id == product_id), None
    )
    if product is None:
        abort(404)
    return render_template(
        "storefront/product.html", shop=shop, product=product, poll_seconds=POLL_SECONDS
    )


# -- per-variant ETAs, lead times and limits as CSV ----------------------------------------------


def _variant_csv_page(shop, status: int = 200, **context):
    return (
        render_template(
            "admin/variant_csv.html",
            shop=shop,
            nav_template="sandbox/_nav.html",
            export_url=url_for(".variant_csv_export"),
            check_url=url_for(".variant_csv_import"),
            apply_url=url_for(".variant_csv_apply"),
            settings_url=url_for(".settings"),
            hidden={},
            **context,
        ),
        status,
    )


@bp.get("/variants.csv")
def variant_csv_export():
    """Every variant's ETA, lead time and limit, to edit in a spreadsheet and import back."""
    from plugin.models import utcnow
    from plugin.services import variant_csv

    shop = _shop()
    response = Response(variant_csv.export(db.session, shop), mimetype="text/csv")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{variant_csv.export_filename(shop, utcnow())}"'
    )
    return response


@bp.route("/variants/import", methods=["GET", "POST"])
def variant_csv_import():
    """Upload → the changes it would make, or every bad row; nothing is saved here."""
    from plugin.services import variant_csv

    shop = _shop()
    if request.method == "GET":
        return _variant_csv_page(shop)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _variant_csv_page(shop, 400, refused="Choose a CSV file to check.")
    plan = variant_csv.check(db.session, shop, upload.read())
    db.session.rollback()
    return _variant_csv_page(
        shop,
        200 if plan.ok else 422,
        plan=plan,
        filename=upload.filename[:100],
        shown=plan.changes[: variant_csv.PREVIEW_ROWS],
        signed=variant_csv.sign(plan, shop, current_app.config["SECRET_KEY"]) if plan.ok else "",
    )


@bp.post("/variants/import/apply")
def variant_csv_apply():
    """The merchant confirmed the checked changes: all are saved at once, or none."""
    from plugin.services import variant_csv

    # The signed plan of a large file is one big form field; the app-wide 5 MB cap still holds.
    request.max_form_memory_size = variant_csv.MAX_SIGNED_PLAN
    shop = _shop()
    try:
        plan = variant_csv.unsign(
            request.form.get("plan", ""), shop, current_app.config["SECRET_KEY"]
        )
    except variant_csv.PlanRefused as exc:
        return _variant_csv_page(shop, 400, refused=str(exc))
    result = variant_csv.apply(db.session, shop, plan)
    if not result.applied:
        return _variant_csv_page(
            shop,
            409,
            plan=result.plan,
            refused="Nothing was imported: the store changed since the file was checked.",
        )
    flash(variant_csv.applied_message(result), "ok")
    return redirect(url_for(".variant_csv_import"))


# -- the Variants page: search, filters, paging, saving a row or a page, bulk edits --------------


def _variants_page(shop, status: int = 200, *, errors=None, typed=None, bulk_errors=None):
    from plugin.services import variant_table

    args = request.values
    listing = variant_table.page(
        db.session,
        shop,
        args.get("q", ""),
        args,
        variant_table.page_number(args.get("page")),
    )

    def page_url(**more) -> str:
        return url_for(".variants", **{**(listing.filters.as_args() if more else {}), **more})

    return (
        render_template(
            "sandbox/variants.html",
            shop=shop,
            listing=listing,
            errors=errors or {},
            typed=typed or {},
            typed_reason=request.form.get("eta_reason", ""),
            bulk_errors=bulk_errors or {},
            save_action=url_for(".variants"),
            bulk_action=url_for(".variants_bulk"),
            list_action=url_for(".variants"),
            hidden={},
            page_url=page_url,
        ),
        status,
    )


def _back_to_variants() -> str:
    from plugin.services import variant_table

    filters, _problem = variant_table.filters_from(request.form)
    page = variant_table.page_number(request.form.get("page"))
    return url_for(".variants", **filters.as_args(), **({"page": page} if page > 1 else {}))


@bp.route("/variants", methods=["GET", "POST"])
def variants():
    """Every variant, 50 a page; a POST carries that page's rows (or one row) only."""
    from plugin.services import variant_table

    shop = _shop()
    if request.method == "GET":
        return _variants_page(shop)
    changes = variant_table.changes_from_form(request.form)
    result = variant_table.save(
        db.session, shop, changes, reason=request.form.get("eta_reason", "")
    )
    if not result.ok:
        typed = variant_table.changes_from_form({**request.form, "row": ""})
        return _variants_page(shop, 422, errors=result.errors, typed=typed)
    flash(result.message, "ok")
    return redirect(_back_to_variants())


@bp.post("/variants/bulk")
def variants_bulk():
    """Set or clear one value on the ticked variants, or on everything the filter matches."""
    from plugin.services import variant_table

    shop = _shop()
    target, values = variant_table.bulk_request(request.form, request.form.getlist("selected"))
    result = variant_table.bulk(db.session, shop, target, values)
    if not result.ok:
        return _variants_page(shop, 422, bulk_errors=result.errors)
    flash(result.message, "ok")
    return redirect(_back_to_variants())


@bp.get("/overview")
def overview():
    """What the app is doing for the sandbox store, and what needs the merchant."""
    from plugin.services.overview import overview as read

    shop = _shop()
    return render_template("sandbox/overview.html", shop=shop, overview=read(db.session, shop))
