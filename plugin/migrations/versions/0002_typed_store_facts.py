"""typed store facts instead of shops.platform_data

Store users, webhook and script registrations (with the webhook secret, now encrypted like the
tokens), stock locations, native backorders, the re-authorisation reason and the selling policy
the app wrote over the merchant's each get a column or a table. Existing rows are carried over,
then the JSON column goes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 17:00:00
"""

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import plugin.models.base

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCRIPT_NAME = "Backorder Badges"
UTC_DT = plugin.models.base.UTCDateTime(timezone=True)


def _vault():
    """The app's own vault when run by `flask db upgrade` (or the tests), else the environment's."""
    from plugin.services.tokens import TokenVault

    try:
        from flask import current_app

        return current_app.extensions["token_vault"]
    except (RuntimeError, KeyError):
        from plugin.settings import Settings

        return TokenVault(Settings.from_env().token_encryption_keys)


def _when(value):
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=UTC)
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def upgrade() -> None:
    op.create_table(
        "store_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=False),
        sa.Column("locale", sa.String(length=35), nullable=True),
        sa.Column("is_owner", sa.Boolean(), nullable=False),
        sa.Column("admitted_at", UTC_DT, nullable=True),
        sa.Column("removed_at", UTC_DT, nullable=True),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_store_users_shop_id_shops"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_store_users")),
        sa.UniqueConstraint("shop_id", "user_id", name=op.f("uq_store_users_shop_id_user_id")),
    )
    op.create_index(op.f("ix_store_users_shop_id"), "store_users", ["shop_id"], unique=False)
    op.create_table(
        "store_registrations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("remote_id", sa.String(length=64), nullable=True),
        sa.Column("registered_at", UTC_DT, nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
            name=op.f("fk_store_registrations_shop_id_shops"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_store_registrations")),
        sa.UniqueConstraint(
            "shop_id", "kind", "name", name=op.f("uq_store_registrations_shop_id_kind_name")
        ),
    )
    op.create_index(
        op.f("ix_store_registrations_shop_id"), "store_registrations", ["shop_id"], unique=False
    )
    op.create_table(
        "store_locations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("location_id", sa.String(length=64), nullable=False),
        sa.Column("first_seen_at", UTC_DT, nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
            name=op.f("fk_store_locations_shop_id_shops"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_store_locations")),
        sa.UniqueConstraint(
            "shop_id", "location_id", name=op.f("uq_store_locations_shop_id_location_id")
        ),
    )
    op.create_index(
        op.f("ix_store_locations_shop_id"), "store_locations", ["shop_id"], unique=False
    )
    with op.batch_alter_table("shops") as batch:
        batch.add_column(sa.Column("reauth_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("reauth_at", UTC_DT, nullable=True))
        batch.add_column(sa.Column("platform_account_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("webhook_secret_encrypted", sa.Text(), nullable=True))
        batch.add_column(sa.Column("registered_at", UTC_DT, nullable=True))
        batch.add_column(sa.Column("registration_error", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("native_backorders", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("variants") as batch:
        batch.add_column(sa.Column("app_policy", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("merchant_policy", sa.String(length=16), nullable=True))

    _carry_over(op.get_bind())

    with op.batch_alter_table("shops") as batch:
        batch.alter_column("native_backorders", server_default=None)
        batch.drop_column("platform_data")


def _carry_over(bind) -> None:
    meta = sa.MetaData()
    shops = sa.Table(
        "shops",
        meta,
        sa.Column("id", sa.Integer),
        sa.Column("platform_data", sa.JSON),
        sa.Column("reauth_reason", sa.Text),
        sa.Column("reauth_at", UTC_DT),
        sa.Column("platform_account_id", sa.String),
        sa.Column("webhook_secret_encrypted", sa.Text),
        sa.Column("registered_at", UTC_DT),
        sa.Column("registration_error", sa.Text),
        sa.Column("native_backorders", sa.Boolean),
    )
    users = sa.Table(
        "store_users",
        meta,
        sa.Column("shop_id", sa.Integer),
        sa.Column("user_id", sa.String),
        sa.Column("email", sa.String),
        sa.Column("locale", sa.String),
        sa.Column("is_owner", sa.Boolean),
        sa.Column("admitted_at", UTC_DT),
        sa.Column("removed_at", UTC_DT),
    )
    registrations = sa.Table(
        "store_registrations",
        meta,
        sa.Column("shop_id", sa.Integer),
        sa.Column("kind", sa.String),
        sa.Column("name", sa.String),
        sa.Column("remote_id", sa.String),
        sa.Column("registered_at", UTC_DT),
    )
    locations = sa.Table(
        "store_locations",
        meta,
        sa.Column("shop_id", sa.Integer),
        sa.Column("location_id", sa.String),
        sa.Column("first_seen_at", UTC_DT),
    )
    levels = sa.Table(
        "inventory_levels", meta, sa.Column("shop_id", sa.Integer), sa.Column("location_id", sa.String)
    )
    variants = sa.Table(
        "variants",
        meta,
        sa.Column("shop_id", sa.Integer),
        sa.Column("platform_id", sa.String),
        sa.Column("app_policy", sa.String),
        sa.Column("merchant_policy", sa.String),
    )
    now = datetime.now(UTC)
    vault = None
    for shop_id, raw in bind.execute(sa.select(shops.c.id, shops.c.platform_data)).all():
        data = raw if isinstance(raw, dict) else json.loads(raw or "{}")
        seen = {
            loc for (loc,) in bind.execute(
                sa.select(levels.c.location_id).where(levels.c.shop_id == shop_id).distinct()
            )
        }
        seen |= {str(loc) for loc in data.get("location_ids") or []}
        for loc in sorted(seen):
            bind.execute(locations.insert().values(shop_id=shop_id, location_id=loc, first_seen_at=now))
        if not data:
            continue
        secret = data.get("webhook_secret")
        if secret and vault is None:
            vault = _vault()
        registered_at = _when(data.get("registered_at"))
        bind.execute(
            shops.update()
            .where(shops.c.id == shop_id)
            .values(
                reauth_reason=data.get("reauth_reason"),
                reauth_at=_when(data.get("reauth_at")),
                platform_account_id=data.get("account_uuid"),
                webhook_secret_encrypted=vault.encrypt(secret) if secret else None,
                registered_at=registered_at,
                registration_error=data.get("registration_error"),
                native_backorders=bool(data.get("native_backorders")),
            )
        )
        for scope, hook_id in (data.get("hook_ids") or {}).items():
            bind.execute(
                registrations.insert().values(
                    shop_id=shop_id,
                    kind="webhook",
                    name=scope,
                    remote_id=str(hook_id),
                    registered_at=registered_at or now,
                )
            )
        if data.get("script_uuid"):
            bind.execute(
                registrations.insert().values(
                    shop_id=shop_id,
                    kind="script",
                    name=SCRIPT_NAME,
                    remote_id=str(data["script_uuid"]),
                    registered_at=registered_at or now,
                )
            )
        admitted = data.get("users") or {}
        removed = data.get("removed_users") or {}
        owner = data.get("owner_id")
        for user_id in sorted(set(admitted) | set(removed) | ({str(owner)} if owner else set())):
            entry = admitted.get(user_id) or {}
            email = entry.get("email") or (data.get("owner_email") if user_id == owner else "")
            bind.execute(
                users.insert().values(
                    shop_id=shop_id,
                    user_id=user_id,
                    email=email or "",
                    locale=entry.get("locale"),
                    is_owner=user_id == owner,
                    admitted_at=now if user_id in admitted else None,
                    removed_at=_when(removed.get(user_id)),
                )
            )
        for variant_id, policy in (data.get("app_inventory_policies") or {}).items():
            bind.execute(
                variants.update()
                .where(variants.c.shop_id == shop_id, variants.c.platform_id == str(variant_id))
                .values(app_policy=policy.get("app"), merchant_policy=policy.get("merchant"))
            )


def downgrade() -> None:
    with op.batch_alter_table("shops") as batch:
        batch.add_column(sa.Column("platform_data", sa.JSON(), nullable=True))
    bind = op.get_bind()
    meta = sa.MetaData()
    meta.reflect(
        bind, only=("shops", "store_users", "store_registrations", "store_locations", "variants")
    )
    variants = meta.tables["variants"]
    shops, users = meta.tables["shops"], meta.tables["store_users"]
    registrations, locations = meta.tables["store_registrations"], meta.tables["store_locations"]
    vault = None
    for shop in bind.execute(sa.select(shops)).mappings().all():
        data = {}
        if shop["webhook_secret_encrypted"]:
            vault = vault or _vault()
            data["webhook_secret"] = vault.decrypt(shop["webhook_secret_encrypted"])
        for key, column in (
            ("reauth_reason", "reauth_reason"),
            ("account_uuid", "platform_account_id"),
            ("registration_error", "registration_error"),
        ):
            if shop[column]:
                data[key] = shop[column]
        if shop["native_backorders"]:
            data["native_backorders"] = True
        rows = bind.execute(sa.select(users).where(users.c.shop_id == shop["id"])).mappings()
        for row in rows:
            if row["admitted_at"] is not None and row["removed_at"] is None:
                entry = {"email": row["email"]}
                if row["locale"]:
                    entry["locale"] = row["locale"]
                data.setdefault("users", {})[row["user_id"]] = entry
            if row["removed_at"] is not None:
                data.setdefault("removed_users", {})[row["user_id"]] = int(
                    row["removed_at"].timestamp()
                )
            if row["is_owner"]:
                data["owner_id"], data["owner_email"] = row["user_id"], row["email"]
        regs = bind.execute(
            sa.select(registrations).where(registrations.c.shop_id == shop["id"])
        ).mappings()
        for row in regs:
            if row["kind"] == "webhook":
                data.setdefault("hook_ids", {})[row["name"]] = int(row["remote_id"])
            else:
                data["script_uuid"] = row["remote_id"]
        locs = bind.execute(
            sa.select(locations.c.location_id).where(locations.c.shop_id == shop["id"])
        ).scalars()
        data["location_ids"] = sorted(locs)
        remembered = bind.execute(
            sa.select(variants.c.platform_id, variants.c.app_policy, variants.c.merchant_policy)
            .where(variants.c.shop_id == shop["id"], variants.c.app_policy.is_not(None))
        ).all()
        if remembered:
            data["app_inventory_policies"] = {
                vid: {"app": app, "merchant": merchant} for vid, app, merchant in remembered
            }
        bind.execute(shops.update().where(shops.c.id == shop["id"]).values(platform_data=data))
    with op.batch_alter_table("shops") as batch:
        batch.alter_column("platform_data", nullable=False)
        for column in (
            "native_backorders",
            "registration_error",
            "registered_at",
            "webhook_secret_encrypted",
            "platform_account_id",
            "reauth_at",
            "reauth_reason",
        ):
            batch.drop_column(column)
    with op.batch_alter_table("variants") as batch:
        batch.drop_column("merchant_policy")
        batch.drop_column("app_policy")
    op.drop_index(op.f("ix_store_locations_shop_id"), table_name="store_locations")
    op.drop_table("store_locations")
    op.drop_index(op.f("ix_store_registrations_shop_id"), table_name="store_registrations")
    op.drop_table("store_registrations")
    op.drop_index(op.f("ix_store_users_shop_id"), table_name="store_users")
    op.drop_table("store_users")
