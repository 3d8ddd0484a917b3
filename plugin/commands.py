"""`flask --app plugin ...` commands: migrations, the sandbox demo, replay, reconcile, keys."""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select

from plugin.extensions import db

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config():
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", current_app.extensions["settings"].database_url)
    return config


def upgrade_database(revision: str = "head") -> None:
    migrate(revision)


def migrate(revision: str, *, down: bool = False) -> None:
    """Upgrade (or downgrade) on one connection of the app's engine.

    On SQLite, batch migrations rebuild a table by copying it and dropping the old one; with
    foreign keys on, that drop would cascade into every child row. So they are off for the
    migration, and the connection is thrown away after it rather than returned to the pool.
    """
    from alembic import command

    with db.engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            with connection.begin():
                config = alembic_config()
                config.attributes["connection"] = connection
                (command.downgrade if down else command.upgrade)(config, revision)
        finally:
            if sqlite:
                connection.invalidate()


db_cli = AppGroup("db", help="Database migrations (Alembic).")


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    upgrade_database(revision)
    click.echo(f"database at {revision}")


sandbox_cli = AppGroup("sandbox", help="The local sandbox store.")


@sandbox_cli.command("seed")
def sandbox_seed() -> None:
    """Create the demo store with a product, unless it already has one."""
    from plugin.services import sandbox_store

    shop = sandbox_store.ensure_shop(db.session)
    db.session.commit()
    if sandbox_store.list_products(db.session, shop):
        click.echo("sandbox store already has products")
        return
    _product, hooks = sandbox_store.seed_demo(db.session, shop)
    db.session.commit()
    statuses = sandbox_store.deliver(shop, hooks)
    click.echo(f"seeded {shop.domain}; webhook statuses {statuses}")


webhooks_cli = AppGroup("webhooks", help="The webhook inbox.")


@webhooks_cli.command("retry")
@click.option(
    "--dead-letters",
    is_flag=True,
    help="Also take back dead letters (deliveries set aside as unreadable), after a fix.",
)
def webhooks_retry(dead_letters: bool) -> None:
    """Queue again every stored webhook that is pending or failed."""
    from sqlalchemy import update

    from plugin.jobs import queue_shop_events
    from plugin.models import InboxStatus, WebhookEvent

    if dead_letters:
        # Never emptied ones only: a body past the retention period is gone for good.
        taken = db.session.execute(
            update(WebhookEvent)
            .where(
                WebhookEvent.status == InboxStatus.DEAD_LETTER,
                WebhookEvent.body_purged_at.is_(None),
            )
            .values(status=InboxStatus.PENDING)
        ).rowcount
        db.session.commit()
        click.echo(f"took back {taken} dead letter(s)")
    rows = db.session.execute(
        select(WebhookEvent.id, WebhookEvent.shop_id, WebhookEvent.status)
        .where(WebhookEvent.status.in_([InboxStatus.PENDING, InboxStatus.FAILED]))
        .order_by(WebhookEvent.id)
    ).all()
    db.session.rollback()  # no transaction left open while events are processed (inline)
    # Pending events of a shop go to its drain; failed ones and shopless ones one by one.
    click.echo(f"queued {queue_shop_events(rows)} webhook(s)")


@click.command("reconcile")
@click.option("--shop", "domain", default=None, help="Only this shop's domain or store hash.")
def reconcile(domain: str | None) -> None:
    """Page through each installed shop's catalogue and fix badge drift."""
    from plugin.jobs import queue_mails, schedule_push
    from plugin.models import InstallStatus, Shop
    from plugin.services.reconcile import reconcile_shop

    query = select(Shop).where(Shop.status == InstallStatus.INSTALLED)
    if domain:
        query = query.where(Shop.domain == domain)
    for shop in db.session.scalars(query).all():
        with click.progressbar(length=1, label=f"{shop.domain}", show_pos=True) as bar:

            def progress(done: int, total: int | None, bar=bar) -> None:
                bar.length = max(total or done, 1)
                bar.update(done - bar.pos)

            report = reconcile_shop(db.session, shop, progress)
        db.session.commit()
        if report.badges_fixed or report.badges_unpushed:
            schedule_push(shop.id)
        queue_mails(report.mail_ids)
        click.echo(
            f"{shop.domain}: {report.products} products, {report.variants} variants, "
            f"{report.badges_fixed} badge(s) fixed, {report.orders} order(s) re-read, "
            f"{report.lines_healed} backorder line(s) healed"
        )


tokens_cli = AppGroup("tokens", help="Stored access tokens.")


@tokens_cli.command("rotate")
def tokens_rotate() -> None:
    """Re-encrypt every stored token under the first TOKEN_ENCRYPTION_KEYS key."""
    from plugin.models import Shop
    from plugin.services.tokens import vault

    count = 0
    for shop in db.session.scalars(select(Shop)):
        for column in ("access_token_encrypted", "refresh_token_encrypted"):
            value = getattr(shop, column)
            if value:
                setattr(shop, column, vault().rotate(value))
                count += 1
    db.session.commit()
    click.echo(f"re-encrypted {count} token(s)")


def register(app: Flask) -> None:
    for command in (db_cli, sandbox_cli, webhooks_cli, reconcile, tokens_cli):
        app.cli.add_command(command)
