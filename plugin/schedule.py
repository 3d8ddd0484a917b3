"""Periodic jobs, run by the `clock` process: `python -m plugin.clock` (see Procfile), which
loads this file into rq's cron scheduler and keeps it running across Redis outages.

The safety nets' periods come from the settings (SWEEP_* variables, parsed once in
plugin/settings.py), so the fault drills can run them every few seconds."""

import os

from rq import cron

from plugin.jobs import (
    purge_order_payloads,
    push_unpushed_badges,
    reconcile_all_shops,
    refresh_expiring_tokens,
    requeue_stuck_webhooks,
    send_delay_notices,
    send_due_mails,
    send_due_restock_alerts,
)
from plugin.settings import SweepSettings

_sweep = SweepSettings.from_env(lambda name: os.environ.get(name, "").strip())
RECONCILE_EVERY_SECONDS = _sweep.reconcile_every_seconds
SWEEP_EVERY_SECONDS = _sweep.every_seconds
# Shopify's expiring offline tokens last an hour; each run refreshes those due within 15 min.
TOKEN_REFRESH_EVERY_SECONDS = 10 * 60
PURGE_EVERY_SECONDS = 24 * 60 * 60
# Mails whose quiet period ended, or whose job was lost, go out within a minute.
MAIL_SWEEP_EVERY_SECONDS = min(60, SWEEP_EVERY_SECONDS)
# Delay notices (Mail Order Rule): a line past its date hears within the hour.
DELAY_NOTICES_EVERY_SECONDS = 60 * 60

cron.register(reconcile_all_shops, queue_name="sync", interval=RECONCILE_EVERY_SECONDS)
cron.register(requeue_stuck_webhooks, queue_name="webhooks", interval=SWEEP_EVERY_SECONDS)
cron.register(push_unpushed_badges, queue_name="push", interval=SWEEP_EVERY_SECONDS)
cron.register(refresh_expiring_tokens, queue_name="sync", interval=TOKEN_REFRESH_EVERY_SECONDS)
cron.register(purge_order_payloads, queue_name="sync", interval=PURGE_EVERY_SECONDS)
cron.register(send_due_mails, queue_name="emails", interval=MAIL_SWEEP_EVERY_SECONDS)
cron.register(send_due_restock_alerts, queue_name="emails", interval=MAIL_SWEEP_EVERY_SECONDS)
cron.register(send_delay_notices, queue_name="emails", interval=DELAY_NOTICES_EVERY_SECONDS)
