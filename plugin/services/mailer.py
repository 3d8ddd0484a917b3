"""Sending one outbox mail over SMTP, exactly once.

The row is marked SENDING and committed before the message is handed to the server, and SENT
after; a crash in between leaves it SENDING, which is never retried automatically (support
sees it), because a mail sent twice is worse than one to check by hand. A server that is down
or says "try later" (4xx) leaves the mail PENDING and the job raises, so RQ retries it with
backoff. A 5xx for the recipient marks the mail BOUNCED and the address suppressed for the
shop: no mail goes to it again.

Without SMTP_URL (the embedded default) nothing leaves the machine: the mail is marked SENT to
the local outbox, which the sandbox's outbox page shows as the customer would see it.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from urllib.parse import unquote, urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.models import MailStatus, OutboxMail, Shop, SuppressedAddress, utcnow
from plugin.services.outbox import is_suppressed

TIMEOUT_S = 20


class MailDeferred(RuntimeError):
    """The mail server could not take the mail now; the job raises so RQ retries it."""


@dataclass(frozen=True)
class Transport:
    smtp_url: str | None
    mail_from: str
    # The app's own domain, for Message-IDs.
    domain: str


def build_message(mail: OutboxMail, shop: Shop, transport: Transport) -> EmailMessage:
    message = EmailMessage()
    message["From"] = formataddr((shop.name or shop.domain, transport.mail_from))
    message["To"] = mail.recipient
    reply_to = (shop.settings.email_reply_to if shop.settings else None) or shop.contact_email
    if reply_to:
        message["Reply-To"] = reply_to
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = mail.message_id or make_msgid(
        idstring=f"mail{mail.id}", domain=transport.domain
    )
    if mail.unsubscribe_url:
        # Subscription mail (RFC 8058, and Gmail's and Yahoo's bulk-sender rules): one-click
        # unsubscribe by a POST to the HTTPS link, and a List-Id per shop's alert list.
        message["List-Unsubscribe"] = f"<{mail.unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message["List-Id"] = f"{_list_name(shop)} <{mail.kind}.{shop.id}.{transport.domain}>"
    message.set_content(mail.text_body)
    message.add_alternative(mail.html_body, subtype="html")
    # After the parts exist: add_alternative moves content headers into the first part.
    message["Content-Language"] = mail.locale
    return message


def _list_name(shop: Shop) -> str:
    name = "".join(ch for ch in (shop.name or shop.domain) if ch.isalnum() or ch in " -.'")
    return f'"{name.strip()[:60]} back-in-stock alerts"'


def send(session: Session, mail_id: int, transport: Transport) -> str:
    """Send one mail if it is still due; returns what happened. Commits its own steps."""
    mail = session.scalars(
        select(OutboxMail).where(OutboxMail.id == mail_id).with_for_update()
    ).first()
    # Nothing to send: end the transaction, so the row lock is not kept until the caller's
    # session closes (another worker's send of the same mail would wait on it).
    if mail is None or mail.status != MailStatus.PENDING:
        session.commit()
        return f"mail {mail_id}: nothing to do"
    if mail.send_after > utcnow():
        session.commit()
        return f"mail {mail_id}: waiting for its quiet period"
    shop = session.get(Shop, mail.shop_id)
    if is_suppressed(session, mail.shop_id, mail.recipient):
        mail.status = MailStatus.SUPPRESSED
        mail.last_error = "the address bounced before"
        session.commit()
        return f"mail {mail_id}: suppressed"
    message = build_message(mail, shop, transport)
    mail.message_id = message["Message-ID"]
    mail.attempts += 1
    if not transport.smtp_url:
        mail.status, mail.sent_at = MailStatus.SENT, utcnow()
        mail.last_error = None
        session.commit()
        return f"mail {mail_id}: kept in the local outbox"
    try:
        server = _connect(transport.smtp_url)
    except (OSError, smtplib.SMTPException) as exc:
        mail.last_error = f"mail server unreachable: {exc}"[:2000]
        session.commit()
        raise MailDeferred(mail.last_error) from exc
    mail.status = MailStatus.SENDING
    session.commit()  # from here on, never sent again automatically
    try:
        with server:
            server.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        code = min((c for c, _ in exc.recipients.values()), default=550)
        return _refused(session, mail, code, str(exc))
    except smtplib.SMTPResponseException as exc:
        return _refused(session, mail, exc.smtp_code, str(exc))
    except (OSError, smtplib.SMTPException) as exc:
        # The server dropped us mid-conversation before accepting: not delivered.
        mail.status = MailStatus.PENDING
        mail.last_error = f"sending failed: {exc}"[:2000]
        session.commit()
        raise MailDeferred(mail.last_error) from exc
    mail.status, mail.sent_at, mail.last_error = MailStatus.SENT, utcnow(), None
    session.commit()
    return f"mail {mail_id}: sent"


def _refused(session: Session, mail: OutboxMail, code: int, error: str) -> str:
    if 400 <= code < 500:
        mail.status = MailStatus.PENDING
        mail.last_error = f"deferred by the mail server ({code}): {error}"[:2000]
        session.commit()
        raise MailDeferred(mail.last_error)
    mail.status = MailStatus.BOUNCED
    mail.last_error = f"refused by the mail server ({code}): {error}"[:2000]
    address = mail.recipient.strip().lower()
    if not is_suppressed(session, mail.shop_id, address):
        session.add(SuppressedAddress(shop_id=mail.shop_id, email=address, reason=mail.last_error))
    session.commit()
    return f"mail {mail.id}: bounced"


def _connect(url: str) -> smtplib.SMTP:
    parts = urlsplit(url)
    host, user = parts.hostname or "localhost", unquote(parts.username or "")
    password = unquote(parts.password or "")
    if parts.scheme == "smtps":
        server: smtplib.SMTP = smtplib.SMTP_SSL(
            host, parts.port or 465, timeout=TIMEOUT_S, context=ssl.create_default_context()
        )
    else:
        server = smtplib.SMTP(host, parts.port or 587, timeout=TIMEOUT_S)
        server.ehlo()
        if server.has_extn("starttls"):
            server.starttls(context=ssl.create_default_context())
            server.ehlo()
    if user:
        server.login(user, password)
    return server
