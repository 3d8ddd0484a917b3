import pytest
from cryptography.fernet import Fernet

from plugin import create_app
from plugin.services.tokens import TokenDecryptionError, TokenVault
from plugin.settings import PRODUCTION_SECRETS, Settings, SettingsError
from tests.conftest import base_env


def production_env(**overrides):
    env = base_env(
        APP_ENV="production",
        DATABASE_URL="postgres://u@db.example/app",
        REDIS_URL="redis://cache.example:6379/0",
        SECRET_KEY="a-real-secret",
        APP_URL="https://badges.example",
    )
    env.pop("SANDBOX_ENABLED")
    env.update(overrides)
    return env


@pytest.mark.parametrize("missing", PRODUCTION_SECRETS)
def test_production_refuses_to_start_without_each_secret_and_names_it(missing):
    env = production_env()
    env.pop(missing)
    with pytest.raises(SettingsError, match=missing):
        create_app(env)


def test_production_refuses_the_public_development_secret_key():
    from plugin.settings import DEV_SECRET_KEY

    with pytest.raises(SettingsError, match="SECRET_KEY"):
        Settings.from_env(production_env(SECRET_KEY=DEV_SECRET_KEY))


def test_production_settings_are_parsed_once_into_a_typed_object():
    settings = Settings.from_env(production_env())
    assert settings.is_production
    assert settings.database_url == "postgresql+psycopg://u@db.example/app"
    assert settings.redis_url == "redis://cache.example:6379/0"
    assert not settings.jobs_run_inline
    assert settings.sandbox_enabled is False


def test_development_default_is_sqlite_in_the_instance_folder_with_inline_jobs(tmp_path):
    settings = Settings.from_env({}, instance_path=tmp_path)
    assert settings.app_env == "development"
    assert settings.database_url == f"sqlite:///{tmp_path}/backorder-badges.sqlite3"
    assert settings.jobs_run_inline
    assert settings.sandbox_enabled


def test_unknown_app_env_is_refused():
    with pytest.raises(SettingsError, match="APP_ENV"):
        Settings.from_env({"APP_ENV": "staging"})


def test_a_malformed_encryption_key_is_named():
    with pytest.raises(SettingsError, match="TOKEN_ENCRYPTION_KEYS entry 2"):
        Settings.from_env({"TOKEN_ENCRYPTION_KEYS": f"{Fernet.generate_key().decode()},nope"})


def test_rotated_keys_still_read_old_tokens_and_rotation_moves_them_to_the_new_key():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    stored = TokenVault([old]).encrypt("shpat_secret")
    assert "shpat_secret" not in stored

    rotated_vault = TokenVault([new, old])
    assert rotated_vault.decrypt(stored) == "shpat_secret"
    rewritten = rotated_vault.rotate(stored)
    # Once rewritten, the old key can go.
    assert TokenVault([new]).decrypt(rewritten) == "shpat_secret"
    with pytest.raises(TokenDecryptionError):
        TokenVault([new]).decrypt(stored)


def test_tokens_rotate_command_rewrites_stored_tokens(app, database_url):
    from plugin.extensions import db
    from tests import factories

    shop = factories.shop("rotate.sandbox.local", token="tok-123")
    before = shop.access_token_encrypted
    new_key = Fernet.generate_key().decode()
    env = base_env(DATABASE_URL=database_url)
    env["TOKEN_ENCRYPTION_KEYS"] = f"{new_key},{env['TOKEN_ENCRYPTION_KEYS']}"
    rotated_app = create_app(env)
    with rotated_app.app_context():
        result = rotated_app.test_cli_runner().invoke(args=["tokens", "rotate"])
    assert "re-encrypted 1 token(s)" in result.output
    db.session.refresh(shop)
    assert shop.access_token_encrypted != before
    assert TokenVault([new_key]).decrypt(shop.access_token_encrypted) == "tok-123"
