"""Support desk: one customer's lines, mails and notes, and what staff do for them.

GET shows the page; each action is a POST from a form on it (the shell's credential in hidden
fields), done in one unit of work, then the browser is sent back to the page (303) with what
was done named in `done`. A refused action shows the page again with the reason, its status
4xx, nothing changed.
"""

from __future__ import annotations

from flask import redirect, request

from plugin.blueprints.desk import Desk, DeskRefused, desk_route, render
from plugin.extensions import db
from plugin.services import customer_mails
from plugin.services import desk_customer as service
from plugin.services.admin_text import _


def _done_message(code: str | None) -> str | None:
    messages = {
        "resent": _("The mail is queued to be sent again."),
        "eta": _("The new date is saved and the customer is told."),
        "eta_silent": _(
            "The new date is saved. No mail was queued: the shop's ETA-change emails are off, "
            "or the date moved earlier and the shop does not mail earlier dates."
        ),
        "cancel": _("The store is asked to cancel the line; the result shows in its timeline."),
        "note": _("The note is added."),
    }
    return messages.get(code or "")


def _email(desk: Desk) -> str:
    try:
        return service.clean_email(request.values.get("email"))
    except service.DeskActionRefused as exc:
        raise DeskRefused(exc.message, exc.status) from exc


def _int(name: str) -> int:
    try:
        return int(request.form.get(name, ""))
    except ValueError as exc:
        raise DeskRefused(
            _("The form is incomplete; open the customer's page again."), 400
        ) from exc


def _page(desk: Desk, email: str, status: int = 200, error: str | None = None, **form):
    try:
        found = service.customer(db.session, desk.shop, email)
    except service.DeskActionRefused as exc:
        raise DeskRefused(exc.message, exc.status) from exc
    from plugin.blueprints.desk_search import variant_link

    return render(
        desk,
        "desk/customer.html",
        status,
        customer=found,
        done=None if error else _done_message(request.args.get("done")),
        error=error,
        form=form,
        variant_link=variant_link(desk),
        note_max=service.NOTE_MAX,
        reason_max=service.REASON_MAX,
    )


@desk_route("/customer")
def customer(desk: Desk):
    return _page(desk, _email(desk))


@desk_route("/customer/mail")
def customer_mail(desk: Desk):
    email = _email(desk)
    try:
        mail_id = int(request.args.get("mail_id", ""))
    except ValueError as exc:
        raise DeskRefused(_("No such mail for this customer."), 404) from exc
    try:
        mail = service.mail_of(db.session, desk.shop, email, mail_id)
    except service.DeskActionRefused as exc:
        raise DeskRefused(exc.message, exc.status) from exc
    return render(desk, "desk/customer_mail.html", mail=mail, email=email)


def _act(desk: Desk, email: str, action, done: str, after=None, **form):
    try:
        result = action()
    except service.DeskActionRefused as exc:
        db.session.rollback()
        if exc.status == 404:
            raise DeskRefused(exc.message, 404) from exc
        return _page(desk, email, exc.status, error=exc.message, **form)
    db.session.commit()
    code = after(result) if after else None
    return redirect(desk.url("customer", email=email, done=code or done), 303)


@desk_route("/customer/resend", methods=("POST",))
def customer_resend(desk: Desk):
    email = _email(desk)
    mail_id = _int("mail_id")

    def after(new_id: int) -> None:
        from plugin.jobs import queue_mails

        queue_mails([new_id])

    return _act(
        desk,
        email,
        lambda: service.resend(db.session, desk.shop, email, mail_id, desk.staff_user),
        "resent",
        after,
    )


@desk_route("/customer/eta", methods=("POST",))
def customer_eta(desk: Desk):
    email = _email(desk)
    line_id = _int("line_id")

    def act():
        return service.change_eta(
            db.session,
            desk.shop,
            email,
            line_id,
            request.form.get("eta"),
            request.form.get("reason"),
            desk.staff_user,
            links=customer_mails.app_links(),
        )

    def after(change: service.EtaChange) -> str:
        if change.mail_id is not None:
            from plugin.jobs import queue_mails

            queue_mails([change.mail_id])
        return "eta" if change.told else "eta_silent"

    return _act(
        desk,
        email,
        act,
        "eta",
        after,
        eta_line=line_id,
        eta=request.form.get("eta", ""),
        reason=request.form.get("reason", ""),
    )


@desk_route("/customer/cancel", methods=("POST",))
def customer_cancel(desk: Desk):
    email = _email(desk)
    line_id = _int("line_id")

    def after(cancelled_line: int) -> None:
        from plugin.jobs import queue_platform_cancel

        queue_platform_cancel(cancelled_line)

    return _act(
        desk,
        email,
        lambda: service.cancel_line(db.session, desk.shop, email, line_id, desk.staff_user),
        "cancel",
        after,
    )


@desk_route("/customer/note", methods=("POST",))
def customer_note(desk: Desk):
    email = _email(desk)
    return _act(
        desk,
        email,
        lambda: service.add_note(
            db.session, desk.shop, email, request.form.get("text"), desk.staff_user
        ),
        "note",
        note=request.form.get("text", ""),
    )
