"""A real SMTP server for tests (aiosmtpd on 127.0.0.1): what it accepted, parsed as a mail
client would, with refusals and stalls on demand. Its fixtures (`smtp`, `smtp_app`)
are in tests/conftest.py."""

from __future__ import annotations

import asyncio
import email
import socket
from email.message import EmailMessage
from email.policy import default as default_policy

from aiosmtpd.controller import Controller

MAIL_FROM = "mail@app.test"


# --- a real SMTP server ------------------------------------------------------------------------


class Mailbox:
    """What the server accepted, parsed; it refuses `refused` at RCPT with a 550, and with
    `hold_after` set keeps the next message's DATA unanswered (until the server stops)."""

    def __init__(self):
        self.messages: list[EmailMessage] = []
        self.refused: set[str] = set()
        self.hold_after: int | None = None
        self.holding = False

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refused:
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.hold_after is not None and len(self.messages) >= self.hold_after:
            self.holding = True
            # Never answered: the server is stopped under this conversation.
            await asyncio.Event().wait()
        self.messages.append(email.message_from_bytes(envelope.content, policy=default_policy))
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.mailbox = Mailbox()
        self.controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
