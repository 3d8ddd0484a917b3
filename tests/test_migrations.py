"""Migrations: one head, and they build exactly the schema the models describe."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from plugin import create_app
from plugin.commands import alembic_config, upgrade_database
from plugin.extensions import db
from plugin.models import Base
from tests.conftest import base_env


def test_there_is_exactly_one_alembic_head(app):
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1, f"multiple heads: {heads}"


def _diff(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)


def test_models_match_migrations_on_postgresql(app):
    assert _diff(db.engine) == []


@pytest.mark.parametrize("kind", ["sqlite"])
def test_migrations_run_on_sqlite_and_match_models(tmp_path, kind):
    sqlite_app = create_app(base_env(DATABASE_URL=f"sqlite:///{tmp_path}/m.sqlite3"))
    with sqlite_app.app_context():
        upgrade_database()
        assert _diff(db.engine) == []
