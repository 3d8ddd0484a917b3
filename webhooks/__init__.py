"""Verifying platform deliveries and translating them into the app's own events (`domain`).

One module per platform implements `webhooks.source.WebhookSource`. Receiving and recording are
the app's (`plugin/blueprints/webhooks.py`, `plugin/services/inbox.py`); nothing here reads a
database, knows Flask or calls a platform.
"""
