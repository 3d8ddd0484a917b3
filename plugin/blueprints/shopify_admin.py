"""The embedded app inside the Shopify admin: the app page and the JSON API behind it.

The admin shows the app in an iframe, so no cookie is used here. The page is opened with the
admin's `id_token`; every API call carries a fresh session token (`Authorization: Bearer`,
added by App Bridge). The first open of a shop also installs it: its session token is
exchanged for an expiring offline token (managed install + token exchange). Every HTML answer
names, per shop, who may frame it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

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
from flask_babel import lazy_gettext

from connectors.shopify import oauth
from connectors.shopify.session_token import InvalidSessionToken, SessionToken, verify
from plugin.extensions import db
from plugin.jobs import start_sync
from plugin.models import (
    InstallStatus,
    Platform,
    Shop,
    utcnow,
)
from plugin.services import (
    mail_template_form,
    mail_templates,
    notify_policy,
    notify_settings,
    notify_waitlist,
    settings_form,
    support,
)
from plugin.services.shopify_install import store_grant
from plugin.services.shops import find_shop

bp = Blueprint("shopify_admin", __name__, url_prefix="/shopify")
APP_BRIDGE_URL = "https://cdn.shopify.com/shopifycloud/app-bridge.js"
# Polaris web components, following the newest stable 1.x release (Shopify's App Home docs).
POLARIS_URL = "https://cdn.shopify.com/shopifycloud/polaris-1.js"
RECENT_TRANSITIONS = 20
WAITLIST_ROWS = 200
SHOP_ENVIRON_KEY = "backorder_badges.shopify_shop"


# -- framing -----------------------------------------------------------------------------------


def frame_ancestors(shop: str | None) -> str:
    """The CSP for one shop's admin; a page with no known shop may not be framed at all."""
    if shop and oauth.is_shop_domain(shop):
        return f"frame-ancestors https://{shop} https://admin.shopify.com;"
    return "frame-ancestors 'none';"


def remember_shop(shop: str) -> None:
    """The verified shop of this request, for its CSP (kept on the request, never shared)."""
    request.environ[SHOP_ENVIRON_KEY] = shop


def add_frame_ancestors(response: Response) -> Response:
    """after_request of the Shopify blueprints: every HTML answer gets its per-shop CSP."""
    if response.mimetype == "text/html":
        shop = request.environ.get(SHOP_ENVIRON_KEY)
        if shop is None:
            param = request.args.get("shop")
            shop = param if oauth.is_shop_domain(param) else None
        response.headers["Content-Security-Policy"] = frame_ancestors(shop)
    return response


bp.after_request(add_frame_ancestors)


def _settings():
    return current_app.extensions["settings"]


def error_page(status: int, title: str, message: str):
    return render_template("shopify/error.html", title=title, message=message), status


# -- the app page --------------------------------------------------------------------------------


# The app's pages, in the order of the admin's sidebar; the first is the app's home.
PAGES = (
    ("app_home", lazy_gettext("Overview")),
    ("variants_page", lazy_gettext("Variants")),
    ("settings_page", lazy_gettext("Settings")),
    ("emails_page", lazy_gettext("Email wording")),
    ("support_page", lazy_gettext("Support")),
    # The support desk (plugin/blueprints/desk.py): customers, variants and KPIs.
    ("desk.shopify_home", lazy_gettext("Support desk")),
)


@bp.get("/app")
def app_home():
    return _open_page("app_home", "shopify/overview.html", lambda shop: {})


@bp.get("/app/variants")
def variants_page():
    return _open_page("variants_page", "shopify/variants.html", lambda shop: {})


@bp.get("/app/settings")
def settings_page():
    return _open_page("settings_page", "shopify/settings.html", _settings_context)


@bp.get("/app/emails")
def emails_page():
    return _open_page("emails_page", "shopify/emails.html", _emails_context)


@bp.get("/app/support")
def support_page():
    return _open_page("support_page", "shopify/support.html", _support_context)


def _open_page(endpoint: str, template: str, context: Callable[[Shop], dict]):
    """Every page opens the same way: a verified session token for the shop in the URL (the
    admin adds it; App Bridge adds it again after a sidebar click, by the bootstrap page)."""
    settings = _settings()
    shop_param = request.args.get("shop")
    if shop_param is not None and not oauth.is_shop_domain(shop_param):
        return error_page(400, _("Unknown shop"), _("The shop must be a myshopify.com domain."))
    id_token = request.args.get("id_token")
    if not id_token:
        return _without_session_token(shop_param)
    try:
        token = verify(id_token, settings.shopify_client_id, settings.shopify_client_secret)
    except InvalidSessionToken as exc:
        return error_page(
            401,
            _("Please reopen the app"),
            _("%(reason)s. Open Backorder Badges again from your Shopify admin.", reason=exc),
        )
    if shop_param and shop_param != token.shop:
        return error_page(401, _("Please reopen the app"), _("The session is for another shop."))
    remember_shop(token.shop)

    shop = find_shop(db.session, Platform.SHOPIFY, token.shop)
    notice, problem = None, None
    if shop is None or shop.status != InstallStatus.INSTALLED or not shop.access_token_encrypted:
        shop, notice, problem = _install_by_token_exchange(shop, token)
        if shop is None:
            return problem
    return render_template(
        template,
        **_page_context(shop, token, endpoint, notice, problem),
        **context(shop),
    )


def _without_session_token(shop_param: str | None):
    """Opened without `id_token`: a signed first visit of a new shop goes to the OAuth install;
    anything else gets a page that asks App Bridge for a session token and reloads."""
    settings = _settings()
    signed = (
        shop_param
        and oauth.query_hmac_valid(request.args.items(multi=True), settings.shopify_client_secret)
        and oauth.timestamp_fresh(request.args.get("timestamp"))
    )
    if signed:
        shop = find_shop(db.session, Platform.SHOPIFY, shop_param)
        if shop is None or shop.status != InstallStatus.INSTALLED:
            return redirect(url_for("shopify_install.install", **request.args))
    return render_template("shopify/bootstrap.html", api_key=settings.shopify_client_id)


def _install_by_token_exchange(shop: Shop | None, token: SessionToken):
    """First open (managed install), reinstall or re-authorisation: exchange the session token.

    Returns (shop, notice, problem). With no shop to show, problem is the error page to send.
    """
    settings = _settings()
    was = shop.status if shop is not None else None
    try:
        grant = oauth.exchange_session_token(
            token.shop, token.raw, settings.shopify_client_id, settings.shopify_client_secret
        )
    except oauth.TokenRequestRefused as exc:
        current_app.logger.warning("token exchange refused for %s: %s", token.shop, exc)
        if shop is None or shop.status == InstallStatus.UNINSTALLED:
            return (
                None,
                None,
                error_page(
                    401,
                    _("Shopify did not accept this session"),
                    _(
                        "Shopify refused to exchange the session token for an access token "
                        "(%(error)s). Reload the app from your Shopify admin to try again.",
                        error=exc.error,
                    ),
                ),
            )
        return shop, None, "refused"
    except oauth.TokenEndpointUnavailable as exc:
        current_app.logger.warning("token exchange failed for %s: %s", token.shop, exc)
        if shop is None or shop.status == InstallStatus.UNINSTALLED:
            return (
                None,
                None,
                error_page(
                    503,
                    _("Shopify is not answering"),
                    _("Shopify could not be reached. Try again soon."),
                ),
            )
        return shop, None, "unavailable"
    shop = store_grant(db.session, token.shop, grant)
    db.session.commit()
    start_sync(shop.id)
    if was == InstallStatus.NEEDS_REAUTH:
        notice = _("Access to your store is restored; badges are being updated again.")
    elif was is None or was == InstallStatus.UNINSTALLED:
        notice = _(
            "Backorder Badges is installed. Choose your labels and lead time under Settings."
        )
    else:
        notice = None
    return shop, notice, None


def _page_context(
    shop: Shop, token: SessionToken, endpoint: str, notice: str | None, problem: str | None
) -> dict:
    """What the shell of every page needs: the shop, its token and the page links."""
    settings = _settings()
    pages = page_links(shop.domain, token.raw, endpoint)
    return {
        "shop": shop,
        "api_key": settings.shopify_client_id,
        "app_bridge_url": APP_BRIDGE_URL,
        "polaris_url": POLARIS_URL,
        "id_token": token.raw,
        "notice": notice,
        "problem": problem,
        "needs_reauth": shop.status == InstallStatus.NEEDS_REAUTH,
        "reauth_reason": shop.reauth_reason,
        "reauth_url": reauth_url(shop.domain),
        "pages": pages,
        "page_urls": {page["endpoint"]: page["fallback_href"] for page in pages},
    }


def page_links(shop_domain: str, id_token: str, current: str) -> list[dict]:
    """The sidebar's links (App Bridge adds the session) and the page's own links for when App
    Bridge is not there: those carry the shop and the token the page was opened with."""
    keep = {key: request.args[key] for key in ("host", "locale") if request.args.get(key)}
    links = []
    for endpoint, label in PAGES:
        name = endpoint if "." in endpoint else f"shopify_admin.{endpoint}"
        links.append(
            {
                "endpoint": endpoint,
                "label": label,
                "href": url_for(name),
                "fallback_href": url_for(name, shop=shop_domain, id_token=id_token, **keep),
                "current": endpoint == current
                or (endpoint.startswith("desk.") and current.startswith("desk.")),
            }
        )
    return links


def _settings_context(shop: Shop) -> dict:
    return {
        "values": settings_form.form_values(shop),
        "errors": {},
        "location_options": settings_form.shop_locations(db.session, shop),
        "action": url_for(".save_settings"),
        "notify": notify_settings.page_context(shop),
        "save_bar": True,
    }


def _emails_context(shop: Shop) -> dict:
    return {
        "mail_kinds": mail_templates.KIND_LABELS,
        "mail_languages": mail_templates.LANGUAGES,
        "mail_template": mail_template_json(
            shop,
            mail_template_form.load(db.session, shop, None, _shop_language(shop)),
        ),
        "mail_templates_url": url_for(".get_mail_template"),
    }


def _support_context(shop: Shop) -> dict:
    return {
        "support": support_view(shop),
        "waitlist_url": url_for(".get_waitlist"),
        "waitlist_csv_url": url_for(".get_waitlist_csv"),
    }


def reauth_url(shop_domain: str) -> str:
    """Where the merchant approves the app again (Shopify's managed-install page)."""
    store = shop_domain.removesuffix(".myshopify.com")
    return (
        f"https://admin.shopify.com/store/{store}/oauth/install"
        f"?client_id={_settings().shopify_client_id}"
    )


# -- the support view ------------------------------------------------------------------------


def support_view(shop: Shop) -> dict:
    """Recent badge changes and how the shop's webhooks are doing, for support conversations."""
    session = db.session
    transitions = support.recent_transitions(session, shop, RECENT_TRANSITIONS)
    health = support.inbox_health(session, shop)
    return {
        "status": shop.status.value,
        "reauth_reason": shop.reauth_reason,
        "transitions": transitions,
        "inbox": health,
        "data_requests": support.data_requests(session, shop),
    }


# -- the JSON API ---------------------------------------------------------------------------------


def api_error(status: int, message: str, *, retry_with_new_token: bool = False):
    response = jsonify(error=message)
    response.status_code = status
    if retry_with_new_token:
        # App Bridge fetches a fresh session token and retries once when it sees this header.
        response.headers["X-Shopify-Retry-Invalid-Session-Request"] = "1"
    return response


def session_token_required(view: Callable) -> Callable:
    """Every API call proves itself with a session token for a shop that has the app."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        settings = _settings()
        header = request.headers.get("Authorization", "")
        raw = header[7:].strip() if header[:7].lower() == "bearer " else None
        try:
            token = verify(raw, settings.shopify_client_id, settings.shopify_client_secret)
        except InvalidSessionToken as exc:
            return api_error(401, str(exc), retry_with_new_token=True)
        shop = find_shop(db.session, Platform.SHOPIFY, token.shop)
        if shop is None or shop.status == InstallStatus.UNINSTALLED:
            return api_error(401, _("%(shop)s does not have the app installed", shop=token.shop))
        remember_shop(shop.domain)
        return view(shop, *args, **kwargs)

    return wrapper


@bp.get("/api/settings")
@session_token_required
def get_settings(shop: Shop):
    variants = settings_form.shop_variants(db.session, shop)
    return jsonify(
        values=settings_form.form_values(shop),
        status=shop.status.value,
        # Variants whose fixed ETA has passed: shoppers see the lead time until a new date.
        fixed_eta_passed=sorted(settings_form.passed_etas(shop, variants)),
        # What "automatic" double opt-in means for this store, and whether it applies now.
        notify_double_opt_in_applies=notify_policy.double_opt_in_applies(shop),
        notify_double_opt_in_automatic_means=notify_policy.view(shop).automatic_means,
        variants=[
            {
                "id": v.id,
                "title": v.title,
                "product": v.product.title if v.product else "",
                "sku": v.sku or "",
            }
            for v in variants
        ],
    )


@bp.post("/api/settings")
@session_token_required
def save_settings(shop: Shop):
    """Form-encoded or JSON; all or nothing, as on every settings page."""
    if request.is_json:
        payload = request.get_json(silent=True)
        if not isinstance(payload, dict):
            return api_error(400, "send the settings as a JSON object")
        texts = payload.pop("notify_texts", None)
        form = {str(k): _form_value(v) for k, v in payload.items()}
        if texts is not None:
            # {"fr": {"heading": "…"}}: languages and fields left out stay as they were.
            fields, problem = notify_settings.texts_from_json(texts)
            if problem:
                return jsonify(saved=False, errors={"notify_texts": problem}), 422
            form.update(fields)
    else:
        form = request.form.to_dict()
    submission, changed = settings_form.save(db.session, shop, form)
    if not submission.ok:
        return jsonify(saved=False, errors=submission.errors), 422
    return jsonify(
        saved=True,
        badges_updated=changed,
        message=_("Settings saved. %(num)s badge(s) updated.", num=changed),
    )


def _form_value(value) -> str:
    """JSON values as the form would send them; a list (locations) as comma-separated ids."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)


@bp.get("/api/waitlist")
@session_token_required
def get_waitlist(shop: Shop):
    """Per variant: shoppers waiting for it (and how many confirmed), oldest sign-up first."""
    return jsonify(notify_waitlist.waitlist(db.session, shop, limit=WAITLIST_ROWS).as_json())


@bp.get("/api/waitlist.csv")
@session_token_required
def get_waitlist_csv(shop: Shop):
    """Every sign-up still waiting (?all=1: alerted and unsubscribed ones too), as a file."""
    body = notify_waitlist.export_csv(db.session, shop, everyone=request.args.get("all") == "1")
    response = Response(body, mimetype="text/csv")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{notify_waitlist.export_filename(shop, utcnow())}"'
    )
    return response


@bp.get("/api/support")
@session_token_required
def get_support(shop: Shop):
    return jsonify(support_view(shop))


@bp.get("/api/data-requests/<int:report_id>")
@session_token_required
def get_data_request(shop: Shop, report_id: int):
    """A privacy report Shopify asked for (customers/data_request), to hand to the customer."""
    record = support.data_request(db.session, shop, report_id)
    if record is None:
        return api_error(404, "no such data request for this shop")
    response = jsonify(record.report)
    response.headers["Content-Disposition"] = (
        f'attachment; filename="data-request-{record.id}.json"'
    )
    return response


# -- customer email wording ------------------------------------------------------------------------


def _shop_language(shop: Shop) -> str:
    language = (shop.locale or "en").replace("_", "-").split("-")[0].lower()
    return language if language in mail_templates.LANGUAGES else "en"


def mail_template_json(shop: Shop, edit: mail_template_form.TemplateEdit) -> dict:
    """One kind in one language as the editor shows it, and which templates are the merchant's."""
    own = mail_template_form.overview(db.session, shop)
    return {
        "kind": edit.kind,
        "language": edit.language,
        "subject": edit.subject,
        "body": edit.body,
        "default": not edit.custom,
        # A saved template that no longer renders (customers get the default wording meanwhile).
        "errors": edit.errors,
        "variables": [
            {"name": name, "help": mail_template_form.VARIABLE_HELP[name]}
            for name in mail_templates.VARIABLES[edit.kind]
        ],
        "kinds": [{"kind": k, "label": label} for k, label in mail_templates.KIND_LABELS.items()],
        "languages": [
            {"language": code, "name": name} for code, name in mail_templates.LANGUAGES.items()
        ],
        "templates": [
            {"kind": k, "language": code, "default": (k, code) not in own}
            for k in mail_templates.KINDS
            for code in mail_templates.LANGUAGES
        ],
    }


def _preview_json(preview) -> dict | None:
    if preview is None:
        return None
    return {"subject": preview.subject, "text": preview.text, "html": str(preview.html)}


def _mail_template_request(action: str):
    """The posted kind, language, subject and body (JSON object or form) for one action.

    Returns (form, None) or (None, error response) for a malformed request or an unknown
    kind or language."""
    if request.is_json:
        payload = request.get_json(silent=True)
        if not isinstance(payload, dict):
            return None, api_error(400, "send the template as a JSON object")
        form = {str(k): _form_value(v) for k, v in payload.items()}
    else:
        form = request.form.to_dict()
    if form.get("kind") not in mail_templates.KINDS:
        return None, api_error(400, "kind must be one of " + ", ".join(mail_templates.KINDS))
    if form.get("language") not in mail_templates.LANGUAGES:
        return None, api_error(
            400, "language must be one of " + ", ".join(mail_templates.LANGUAGES)
        )
    form["action"] = action
    return form, None


@bp.get("/api/mail-templates")
@session_token_required
def get_mail_template(shop: Shop):
    """The wording in use for ?kind=&language= (the merchant's, else the default)."""
    kind = request.args.get("kind", mail_templates.KINDS[0])
    language = request.args.get("language", _shop_language(shop))
    if kind not in mail_templates.KINDS:
        return api_error(400, "kind must be one of " + ", ".join(mail_templates.KINDS))
    if language not in mail_templates.LANGUAGES:
        return api_error(400, "language must be one of " + ", ".join(mail_templates.LANGUAGES))
    edit = mail_template_form.load(db.session, shop, kind, language)
    return jsonify(mail_template_json(shop, edit))


@bp.post("/api/mail-templates")
@session_token_required
def save_mail_template(shop: Shop):
    """Save one kind in one language; a template that does not render is refused (422)."""
    form, problem = _mail_template_request("save")
    if problem is not None:
        return problem
    edit = mail_template_form.submit(db.session, shop, form)
    if not edit.ok:
        return jsonify(saved=False, errors=edit.errors), 422
    return jsonify(
        saved=True,
        message=_("Saved: customers now get this wording."),
        template=mail_template_json(shop, edit),
        preview=_preview_json(edit.preview),
    )


@bp.post("/api/mail-templates/preview")
@session_token_required
def preview_mail_template(shop: Shop):
    """The mail rendered with sample data, as the customer would see it; nothing is saved."""
    form, problem = _mail_template_request("preview")
    if problem is not None:
        return problem
    edit = mail_template_form.submit(db.session, shop, form)
    if not edit.ok:
        return jsonify(errors=edit.errors), 422
    return jsonify(_preview_json(edit.preview))


@bp.post("/api/mail-templates/restore")
@session_token_required
def restore_mail_template(shop: Shop):
    """Delete the merchant's wording for one kind in one language: the default is used again."""
    form, problem = _mail_template_request("reset")
    if problem is not None:
        return problem
    edit = mail_template_form.submit(db.session, shop, form)
    return jsonify(
        restored=True,
        message=_("The default wording is back in use."),
        template=mail_template_json(shop, edit),
    )


# -- per-variant ETAs, lead times and limits as CSV ----------------------------------------------


def _change_json(change) -> dict:
    def plain(value):
        return value.isoformat() if hasattr(value, "isoformat") else value

    return {
        "line": change.line,
        "variant_id": change.platform_id,
        "sku": change.sku,
        "variant": change.name,
        "field": change.field,
        "old": plain(change.old),
        "new": plain(change.new),
    }


def _errors_json(plan) -> list[dict]:
    return [{"line": line, "reason": reason} for line, reason in plan.errors]


@bp.get("/api/variants.csv")
@session_token_required
def get_variant_csv(shop: Shop):
    """Every variant's ETA, lead time and limit, to edit in a spreadsheet and import back."""
    from plugin.services import variant_csv

    response = Response(variant_csv.export(db.session, shop), mimetype="text/csv")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{variant_csv.export_filename(shop, utcnow())}"'
    )
    return response


@bp.post("/api/variants/import/check")
@session_token_required
def check_variant_csv(shop: Shop):
    """A file (multipart `file`, or JSON {"csv": text}) → its changes and a signed plan to
    confirm, or every bad row (422). Nothing is saved."""
    from plugin.services import variant_csv

    if request.is_json:
        payload = request.get_json(silent=True)
        data = payload.get("csv") if isinstance(payload, dict) else None
        if not isinstance(data, str):
            return api_error(400, 'send the file as multipart "file" or JSON {"csv": text}')
    else:
        upload = request.files.get("file")
        if upload is None:
            return api_error(400, 'send the file as multipart "file" or JSON {"csv": text}')
        data = upload.read()
    plan = variant_csv.check(db.session, shop, data)
    db.session.rollback()
    if not plan.ok:
        return jsonify(ok=False, rows=plan.rows, errors=_errors_json(plan)), 422
    return jsonify(
        ok=True,
        rows=plan.rows,
        change_count=len(plan.changes),
        variants=plan.variants,
        # The first changes, to show; all of them are in the signed plan.
        changes=[_change_json(c) for c in plan.changes[: variant_csv.PREVIEW_ROWS]],
        plan=variant_csv.sign(plan, shop, current_app.config["SECRET_KEY"]),
    )


@bp.post("/api/variants/import/apply")
@session_token_required
def apply_variant_csv(shop: Shop):
    """JSON {"plan": signed plan from the check}: every change saved at once, or none (409 when
    the store changed since the check)."""
    from plugin.services import variant_csv

    payload = request.get_json(silent=True)
    token = payload.get("plan") if isinstance(payload, dict) else None
    if not isinstance(token, str) or len(token) > variant_csv.MAX_SIGNED_PLAN:
        return api_error(400, 'send JSON {"plan": the plan returned by the check}')
    try:
        plan = variant_csv.unsign(token, shop, current_app.config["SECRET_KEY"])
    except variant_csv.PlanRefused as exc:
        return api_error(400, str(exc))
    result = variant_csv.apply(db.session, shop, plan)
    if not result.applied:
        return jsonify(applied=False, errors=_errors_json(result.plan)), 409
    return jsonify(
        applied=True,
        changes=len(plan.changes),
        variants=plan.variants,
        badges_updated=result.badges_changed,
        message=variant_csv.applied_message(result),
    )


# -- the Variants page's API: search, filters, paging, changed rows only, bulk edits -------------


@bp.get("/api/variants")
@session_token_required
def get_variants(shop: Shop):
    """?q=&state=&has_eta=1&limit_reached=1&waiting=1&page=: one page of the shop's variants."""
    from plugin.services import variant_table

    args = request.args
    listing = variant_table.page(
        db.session,
        shop,
        args.get("q", ""),
        args,
        variant_table.page_number(args.get("page")),
        variant_table.page_number(args.get("per_page") or variant_table.PER_PAGE),
    )
    if listing.problem:
        return api_error(400, listing.problem)
    return jsonify(listing.as_json())


@bp.post("/api/variants")
@session_token_required
def save_variants(shop: Shop):
    """{"rows": [{"id": …, "eta": …, "lead": …, "limit": …}], "eta_reason": …}: only the rows
    and fields that changed; a key left out keeps its value, null clears it. All or nothing."""
    from plugin.services import variant_table

    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        return api_error(400, 'send {"rows": [...]} as a JSON object')
    changes, problem = variant_table.changes_from_json(payload.get("rows"))
    if problem:
        return api_error(413 if "per request" in problem else 400, problem)
    result = variant_table.save(
        db.session, shop, changes, reason=str(payload.get("eta_reason") or "")
    )
    if not result.ok:
        errors = [
            {"id": vid, "field": name, "message": message}
            for vid, fields in result.errors.items()
            for name, message in fields.items()
        ]
        return jsonify(saved=False, error=result.message, errors=errors), 422
    return jsonify(
        saved=True,
        changed=result.changed,
        badges_updated=result.badges_changed,
        message=result.message,
    )


@bp.post("/api/variants/bulk")
@session_token_required
def bulk_edit_variants(shop: Shop):
    """{"ids": [...]} or {"filter": {"q": …, "state": …, …}}, with {"set": {"eta": …}} and/or
    {"clear": ["limit"]}: one transaction over the selection or every page the filter matches."""
    from plugin.services import variant_table

    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        return api_error(400, "send the bulk edit as a JSON object")
    if isinstance(payload.get("filter"), dict):
        target, problem = variant_table.filters_from(payload["filter"])
        if problem:
            return api_error(400, problem)
    elif isinstance(payload.get("ids"), list):
        target = payload["ids"]
    else:
        return api_error(400, 'choose the variants: "ids" or "filter"')
    values = {}
    chosen = payload.get("set") if isinstance(payload.get("set"), dict) else {}
    for name, value in chosen.items():
        values[str(name)] = "" if value is None else str(value)
    for name in payload.get("clear") if isinstance(payload.get("clear"), list) else []:
        values[str(name)] = None
    result = variant_table.bulk(
        db.session, shop, target, values, reason=str(payload.get("eta_reason") or "")
    )
    if not result.ok:
        return jsonify(saved=False, error=result.message, errors=result.errors), 422
    return jsonify(
        saved=True,
        matched=result.matched,
        changed=len(result.changed),
        badges_updated=result.badges_changed,
        message=result.message,
    )


@bp.get("/api/overview")
@session_token_required
def get_overview(shop: Shop):
    """What the app is doing for this store, and what needs the merchant (for the Overview)."""
    from plugin.services.overview import overview

    return jsonify(overview(db.session, shop).as_json())
