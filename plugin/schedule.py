"""Periodic jobs, run by the `clock` process: `rq cron plugin/schedule.py` (see Procfile)."""

from rq import cron

from plugin.jobs import (
    purge_order_payloads,
    reconcile_all_shops,
    refresh_expiring_tokens,
    requeue_stuck_webhooks,
    send_delay_notices,
    send_due_mails,
    send_due_restock_alerts,
)

RECONCILE_EVERY_SECONDS = 60 * 60
SWEEP_EVERY_SECONDS = 5 * 60
# Shopify's expiring offline tokens last an hour; each run refreshes those due within 15 min.
TOKEN_REFRESH_EVERY_SECONDS = 10 * 60
PURGE_EVERY_SECONDS = 24 * 60 * 60
# Mails whose quiet period ended, or whose job was lost, go out within a minute.
MAIL_SWEEP_EVERY_SECONDS = 60
# Delay notices (Mail Order Rule): a line past its date hears within the hour.
DELAY_NOTICES_EVERY_SECONDS = 60 * 60

cron.register(reconcile_all_shops, queue_name="sync", interval=RECONCILE_EVERY_SECONDS)
cron.register(requeue_stuck_webhooks, queue_name="webhooks", interval=SWEEP_EVERY_SECONDS)
cron.register(refresh_expiring_tokens, queue_name="sync", interval=TOKEN_REFRESH_EVERY_SECONDS)
cron.register(purge_order_payloads, queue_name="sync", interval=PURGE_EVERY_SECONDS)
cron.register(send_due_mails, queue_name="emails", interval=MAIL_SWEEP_EVERY_SECONDS)
cron.register(send_due_restock_alerts, queue_name="emails", interval=MAIL_SWEEP_EVERY_SECONDS)
cron.register(send_delay_notices, queue_name="emails", interval=DELAY_NOTICES_EVERY_SECONDS)
