"""BigCommerce's app callbacks and the settings/support pages shown in its control panel.

`auth` (browser) installs, `load` (browser) opens the app, `uninstall` and `remove_user` (server
to server) tidy up. Every callback but `auth` is trusted only through its signed payload. The
embedded pages never rely on a cookie: each request carries the app token issued after `load`
(query `token`, form field `token`, or `Authorization: Bearer`), and a token opens only the one
store it was issued for, for as long as its user still belongs to that store.
"""

from __future__ import annotations

import logging

from flask import (
    Blueprint,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from connectors.bigcommerce import oauth
from connectors.bigcommerce.signed_payload import PayloadRefused, verify_callback
from plugin import i18n
from plugin.extensions import db
from plugin.jobs import start_sync
from plugin.models import Shop, utcnow
from plugin.services import bigcommerce_install as installs
from plugin.services import bigcommerce_session as app_tokens
from plugin.services import (
    mail_template_form,
    mail_templates,
    notify_settings,
    notify_waitlist,
    settings_form,
    support,
)
from plugin.services.tokens import vault

log = logging.getLogger(__name__)
bp = Blueprint("bigcommerce", __name__, url_prefix="/bigcommerce")
FRAME_ANCESTORS = "frame-ancestors 'self' https://*.bigcommerce.com https://*.mybigcommerce.com"
RECENT_TRANSITIONS = 25
WAITLIST_ROWS = 200


class EmbeddedRefused(Exception):
    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def _settings():
    return current_app.extensions["settings"]


def _sync_registration(shop: Shop) -> None:
    settings = _settings()
    installs.sync_registration(
        db.session,
        shop,
        vault(),
        settings.app_url,
        installs.client_factory(settings.bigcommerce_api_base_override),
        client_id=settings.bigcommerce_client_id,
    )
    db.session.commit()


def _error_page(message: str, status: int):
    return render_template("bigcommerce/error.html", message=message), status


@bp.after_request
def _embedded_headers(response):
    # Tokens ride in URLs: never leak them to other sites through Referer, never cache them.
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = FRAME_ANCESTORS
    return response


@bp.errorhandler(EmbeddedRefused)
def _refused(exc: EmbeddedRefused):
    if request.path.endswith(".json") or request.headers.get("Authorization"):
        return jsonify(error=str(exc)), exc.status
    return _error_page(str(exc), exc.status)


# --- callbacks -------------------------------------------------------------------------------


@bp.get("/auth")
def auth_callback():
    code = (request.args.get("code") or "").strip()
    scope = (request.args.get("scope") or "").strip()
    context = (request.args.get("context") or "").strip()
    if not code or not scope or not context:
        return _error_page(
            "This install link is incomplete (it needs code, scope and context). Start the "
            "install again from your store's control panel.",
            400,
        )
    settings = _settings()
    try:
        grant = oauth.exchange_code(
            client_id=settings.bigcommerce_client_id,
            client_secret=settings.bigcommerce_client_secret,
            code=code,
            scope=scope,
            context=context,
            redirect_uri=settings.app_url + url_for(".auth_callback"),
        )
    except oauth.InstallRefused as exc:
        log.warning("BigCommerce install refused for %s: %s", context[:60], exc)
        return _error_page(str(exc), exc.status)

    session = db.session
    shop = installs.install(session, vault(), grant)
    session.commit()  # the token is safe before any further call to BigCommerce
    _sync_registration(shop)
    start_sync(shop.id)
    user_id = grant.user.get("id")
    if user_id is None:
        return render_template("bigcommerce/installed.html", shop=shop)
    token = app_tokens.issue(settings.secret_key, shop.domain, str(user_id))
    return _settings_page(shop, token, notice=_("Backorder Badges is installed."))


@bp.get("/load")
def load():
    settings = _settings()
    try:
        claims = verify_callback(
            request.args, settings.bigcommerce_client_id, settings.bigcommerce_client_secret
        )
    except PayloadRefused as exc:
        log.warning("BigCommerce load refused: %s", exc)
        return _error_page(
            "This request could not be verified as coming from BigCommerce. Open the app from "
            "your store's Apps menu.",
            401,
        )
    session = db.session
    try:
        shop = installs.admit(session, claims)
    except installs.AccessRefused as exc:
        session.rollback()
        return _error_page(str(exc), exc.status)
    session.commit()
    # Hooks BigCommerce deactivated (90 quiet days) or lost come back whenever the app opens.
    _sync_registration(shop)
    # The user's language rides in the signed token: every page after this one speaks it
    # (a language the admin has no words for is English, whatever the browser says).
    locale = i18n.pick(claims.user_locale) or ("en" if claims.user_locale else None)
    token = app_tokens.issue(settings.secret_key, shop.domain, claims.user_id, locale)
    return redirect(url_for(".app_settings", store_hash=shop.domain, token=token))


def _server_callback(action):
    settings = _settings()
    try:
        claims = verify_callback(
            request.args, settings.bigcommerce_client_id, settings.bigcommerce_client_secret
        )
    except PayloadRefused as exc:
        log.warning("BigCommerce %s refused: %s", request.path, exc)
        return jsonify(error="signed payload could not be verified"), 401
    known = action(db.session, claims)
    db.session.commit()
    return jsonify(status="ok", store=claims.store_hash, known_store=known), 200


@bp.get("/uninstall")
def uninstall():
    return _server_callback(installs.uninstall)


@bp.get("/remove_user")
def remove_user():
    return _server_callback(installs.remove_user)


# --- embedded pages --------------------------------------------------------------------------


def _presented_token() -> str:
    header = request.headers.get("Authorization") or ""
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return (request.form.get("token") or request.args.get("token") or "").strip()


def _embedded(store_hash: str) -> tuple[Shop, str]:
    """The shop this request may see, or EmbeddedRefused. No cookie is read or written."""
    token = _presented_token()
    try:
        identity = app_tokens.read(_settings().secret_key, token)
    except app_tokens.AppTokenRefused as exc:
        raise EmbeddedRefused(str(exc), 401) from exc
    i18n.use_platform_locale(identity.locale)
    if identity.store_hash != store_hash:
        raise EmbeddedRefused("This app token is for another store.", 403)
    shop = installs.find_store(db.session, store_hash)
    if shop is None or not installs.user_belongs(db.session, shop, identity.user_id):
        raise EmbeddedRefused("You do not have access to Backorder Badges on this store.", 403)
    return shop, token


def _nav(shop: Shop, token: str) -> dict[str, str]:
    return {
        "overview": url_for("bigcommerce.app_overview", store_hash=shop.domain, token=token),
        "settings": url_for("bigcommerce.app_settings", store_hash=shop.domain, token=token),
        "variants": url_for("bigcommerce.app_variants", store_hash=shop.domain, token=token),
        "support": url_for("bigcommerce.app_support", store_hash=shop.domain, token=token),
        "emails": url_for("bigcommerce.app_emails", store_hash=shop.domain, token=token),
        "desk": url_for("desk.bigcommerce_home", store_hash=shop.domain, token=token),
    }


def _settings_page(shop, token, *, values=None, errors=None, notice=None, status=200):
    return (
        render_template(
            "bigcommerce/settings.html",
            shop=shop,
            token=token,
            nav=_nav(shop, token),
            values=values if values is not None else settings_form.form_values(shop),
            errors=errors or {},
            location_options=settings_form.shop_locations(db.session, shop),
            action=url_for(".app_settings", store_hash=shop.domain, token=token),
            variants_url=url_for(".app_variants", store_hash=shop.domain, token=token),
            notice=notice,
            mail_templates_url=url_for(".app_emails", store_hash=shop.domain, token=token),
            registration_error=shop.registration_error,
            notify=notify_settings.page_context(shop),
        ),
        status,
    )


@bp.route("/app/<store_hash>", methods=["GET", "POST"])
def app_settings(store_hash: str):
    shop, token = _embedded(store_hash)
    if request.method == "GET":
        saved = request.args.get("saved", type=int)
        notice = (
            _("Settings saved. %(num)s badge(s) updated.", num=saved) if saved is not None else None
        )
        return _settings_page(shop, token, notice=notice)
    submission, changed = settings_form.save(db.session, shop, request.form)
    if not submission.ok:
        values = settings_form.submitted_values(request.form)
        return _settings_page(shop, token, values=values, errors=submission.errors, status=422)
    return redirect(url_for(".app_settings", store_hash=shop.domain, token=token, saved=changed))


@bp.route("/app/<store_hash>/emails", methods=["GET", "POST"])
def app_emails(store_hash: str):
    """The customer-mail wording editor, per kind and language, with a preview."""
    shop, token = _embedded(store_hash)
    notice = None
    if request.method == "GET":
        edit = mail_template_form.load(
            db.session, shop, request.args.get("kind"), request.args.get("language")
        )
        if request.args.get("saved"):
            notice = _("Wording saved.") if edit.custom else _("Default wording restored.")
    else:
        edit = mail_template_form.submit(db.session, shop, request.form)
        if edit.saved:
            return redirect(
                url_for(
                    ".app_emails",
                    store_hash=shop.domain,
                    token=token,
                    kind=edit.kind,
                    language=edit.language,
                    saved=1,
                )
            )
    return (
        render_template(
            "bigcommerce/emails.html",
            shop=shop,
            token=token,
            nav=_nav(shop, token),
            notice=notice,
            edit=edit,
            kinds=mail_templates.KIND_LABELS,
            languages=mail_templates.LANGUAGES,
            variables=[
                (name, mail_template_form.VARIABLE_HELP[name])
                for name in mail_templates.VARIABLES[edit.kind]
            ],
            custom=mail_template_form.overview(db.session, shop),
            action=url_for(".app_emails", store_hash=shop.domain, token=token),
            link=lambda kind, language: url_for(
                ".app_emails", store_hash=shop.domain, token=token, kind=kind, language=language
            ),
        ),
        422 if request.method == "POST" and not edit.ok else 200,
    )


def _support_facts(shop: Shop) -> dict:
    health = support.inbox_health(db.session, shop)
    return {
        "inbox": health["counts"],
        "last_received_at": health["last_received_at"],
        # What people read: in the shop's zone, the reader's way (the ISO value stays for <time>).
        "last_received_at_local": health["last_received_at_local"],
        "failures": health["failing"],
        **installs.registration_facts(db.session, shop),
        "registered_at_local": support.local_moment(shop.registered_at, shop.timezone),
    }


@bp.get("/app/<store_hash>/support")
def app_support(store_hash: str):
    shop, token = _embedded(store_hash)
    transitions = support.recent_transitions(db.session, shop, RECENT_TRANSITIONS)
    return render_template(
        "bigcommerce/support.html",
        shop=shop,
        token=token,
        nav=_nav(shop, token),
        transitions=transitions,
        facts=_support_facts(shop),
        status_url=url_for(".app_status", store_hash=shop.domain),
        data_requests=support.data_requests(db.session, shop),
        waitlist=notify_waitlist.waitlist(db.session, shop, limit=WAITLIST_ROWS),
    )


@bp.get("/app/<store_hash>/waitlist.csv")
def waitlist_csv(store_hash: str):
    """Every notify-me sign-up still waiting (?all=1: alerted and unsubscribed ones too)."""
    shop, _token = _embedded(store_hash)
    body = notify_waitlist.export_csv(db.session, shop, everyone=request.args.get("all") == "1")
    response = Response(body, mimetype="text/csv")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{notify_waitlist.export_filename(shop, utcnow())}"'
    )
    return response


@bp.get("/app/<store_hash>/data-requests/<int:report_id>.json")
def data_request(store_hash: str, report_id: int):
    """A privacy report, as a file the merchant hands on."""
    shop, _token = _embedded(store_hash)
    record = support.data_request(db.session, shop, report_id)
    if record is None:
        raise EmbeddedRefused("No such data request for this store.", 404)
    response = jsonify(record.report)
    response.headers["Content-Disposition"] = (
        f'attachment; filename="data-request-{record.id}.json"'
    )
    return response


@bp.get("/app/<store_hash>/status.json")
def app_status(store_hash: str):
    """The support page refreshes this with `Authorization: Bearer <app token>`."""
    shop, _token = _embedded(store_hash)
    return jsonify(store=shop.domain, **_support_facts(shop))


# --- per-variant ETAs, lead times and limits as CSV ------------------------------------------


def _variant_csv_page(shop: Shop, token: str, status: int = 200, **context):
    def link(endpoint: str, **args) -> str:
        return url_for(endpoint, store_hash=shop.domain, token=token, **args)

    return (
        render_template(
            "admin/variant_csv.html",
            shop=shop,
            nav=_nav(shop, token),
            nav_template="bigcommerce/_nav.html",
            export_url=link(".variant_csv_export"),
            check_url=link(".variant_csv_import"),
            apply_url=link(".variant_csv_apply"),
            settings_url=link(".app_settings"),
            hidden={},
            **context,
        ),
        status,
    )


@bp.get("/app/<store_hash>/variants.csv")
def variant_csv_export(store_hash: str):
    """Every variant's ETA, lead time and limit, to edit in a spreadsheet and import back."""
    from plugin.services import variant_csv

    shop, _token = _embedded(store_hash)
    response = Response(variant_csv.export(db.session, shop), mimetype="text/csv")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{variant_csv.export_filename(shop, utcnow())}"'
    )
    return response


@bp.route("/app/<store_hash>/variants/import", methods=["GET", "POST"])
def variant_csv_import(store_hash: str):
    """Upload → the changes it would make, or every bad row; nothing is saved here."""
    from plugin.services import variant_csv

    shop, token = _embedded(store_hash)
    if request.method == "GET":
        done = [request.args.get(k, type=int) for k in ("imported", "variants", "badges")]
        notice = None
        if None not in done:
            changes, variants, badges = done
            notice = (
                f"Imported {changes} change(s) to {variants} variant(s); {badges} badge(s) updated."
            )
        return _variant_csv_page(shop, token, notice=notice)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _variant_csv_page(shop, token, 400, refused="Choose a CSV file to check.")
    plan = variant_csv.check(db.session, shop, upload.read())
    db.session.rollback()
    return _variant_csv_page(
        shop,
        token,
        200 if plan.ok else 422,
        plan=plan,
        filename=upload.filename[:100],
        shown=plan.changes[: variant_csv.PREVIEW_ROWS],
        signed=variant_csv.sign(plan, shop, _settings().secret_key) if plan.ok else "",
    )


@bp.post("/app/<store_hash>/variants/import/apply")
def variant_csv_apply(store_hash: str):
    """The merchant confirmed the checked changes: all are saved at once, or none."""
    from plugin.services import variant_csv

    # The signed plan of a large file is one big form field; the app-wide 5 MB cap still holds.
    request.max_form_memory_size = variant_csv.MAX_SIGNED_PLAN
    shop, token = _embedded(store_hash)
    try:
        plan = variant_csv.unsign(request.form.get("plan", ""), shop, _settings().secret_key)
    except variant_csv.PlanRefused as exc:
        return _variant_csv_page(shop, token, 400, refused=str(exc))
    result = variant_csv.apply(db.session, shop, plan)
    if not result.applied:
        return _variant_csv_page(
            shop,
            token,
            409,
            plan=result.plan,
            refused="Nothing was imported: the store changed since the file was checked.",
        )
    return redirect(
        url_for(
            ".variant_csv_import",
            store_hash=shop.domain,
            token=token,
            imported=len(plan.changes),
            variants=plan.variants,
            badges=result.badges_changed,
        )
    )


# --- the Variants page: search, filters, paging, saving a row or a page, bulk edits ------------


def _variants_page(shop: Shop, token: str, status: int = 200, **context):
    from plugin.services import variant_table

    args = request.values
    listing = variant_table.page(
        db.session, shop, args.get("q", ""), args, variant_table.page_number(args.get("page"))
    )

    def page_url(**more) -> str:
        chosen = listing.filters.as_args() if more else {}
        return url_for(".app_variants", store_hash=shop.domain, token=token, **{**chosen, **more})

    url = url_for(".app_variants", store_hash=shop.domain)
    return (
        render_template(
            "bigcommerce/variants.html",
            shop=shop,
            token=token,
            nav=_nav(shop, token),
            listing=listing,
            errors=context.get("errors") or {},
            typed=context.get("typed") or {},
            typed_reason=request.form.get("eta_reason", ""),
            bulk_errors=context.get("bulk_errors") or {},
            notice=context.get("notice") or request.args.get("notice"),
            save_action=url,
            bulk_action=url_for(".app_variants_bulk", store_hash=shop.domain),
            list_action=url,
            hidden={"token": token},
            page_url=page_url,
        ),
        status,
    )


def _back_to_variants(shop: Shop, token: str, message: str) -> str:
    from plugin.services import variant_table

    filters, _problem = variant_table.filters_from(request.form)
    page = variant_table.page_number(request.form.get("page"))
    more = {"page": page} if page > 1 else {}
    return url_for(
        ".app_variants",
        store_hash=shop.domain,
        token=token,
        notice=message,
        **filters.as_args(),
        **more,
    )


@bp.route("/app/<store_hash>/variants", methods=["GET", "POST"])
def app_variants(store_hash: str):
    """Every variant, 50 a page; a POST carries that page's rows (or one row) only."""
    from plugin.services import variant_table

    shop, token = _embedded(store_hash)
    if request.method == "GET":
        return _variants_page(shop, token)
    changes = variant_table.changes_from_form(request.form)
    result = variant_table.save(
        db.session, shop, changes, reason=request.form.get("eta_reason", "")
    )
    if not result.ok:
        typed = variant_table.changes_from_form({**request.form, "row": ""})
        return _variants_page(shop, token, 422, errors=result.errors, typed=typed)
    return redirect(_back_to_variants(shop, token, result.message))


@bp.post("/app/<store_hash>/variants/bulk")
def app_variants_bulk(store_hash: str):
    """Set or clear one value on the ticked variants, or on everything the filter matches."""
    from plugin.services import variant_table

    shop, token = _embedded(store_hash)
    target, values = variant_table.bulk_request(request.form, request.form.getlist("selected"))
    result = variant_table.bulk(db.session, shop, target, values)
    if not result.ok:
        return _variants_page(shop, token, 422, bulk_errors=result.errors)
    return redirect(_back_to_variants(shop, token, result.message))


@bp.get("/app/<store_hash>/overview")
def app_overview(store_hash: str):
    """What the app is doing for this store, and what needs the merchant."""
    from plugin.services.overview import overview

    shop, token = _embedded(store_hash)
    return render_template(
        "bigcommerce/overview.html",
        shop=shop,
        token=token,
        nav=_nav(shop, token),
        overview=overview(db.session, shop),
    )
