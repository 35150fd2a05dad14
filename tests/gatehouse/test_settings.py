"""Settings come from the environment only: embedded by default, PostgreSQL/Redis when told, and
a production profile that refuses to start half-configured. Importing them writes nothing: the data
dir and the generated key come from ``manage.py prepare_data_dir`` (tests/gatehouse/test_data_dir.py).
Each case imports the settings in a fresh process, because they are read once, at import."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from tests.gatehouse.subprocesses import embedded_env, run_manage, run_python

# Each case starts a fresh interpreter with an environment of its own (embedded_env).
pytestmark = [pytest.mark.integration, pytest.mark.own_environment]

SHOW_SETTINGS = """
import json, django
django.setup()
from django.conf import settings as s
import gatehouse.settings as raw  # SECRET_KEY as read: Django refuses to hand out an empty one
print(json.dumps({
    "db_engine": s.DATABASES["default"]["ENGINE"],
    "db_name": str(s.DATABASES["default"]["NAME"]),
    "channel_layer": s.CHANNEL_LAYERS["default"]["BACKEND"],
    "channel_hosts": s.CHANNEL_LAYERS["default"].get("CONFIG", {}).get("hosts"),
    "cache": s.CACHES["default"]["BACKEND"],
    "broker": s.CELERY_BROKER_URL,
    "broker_options": {k: str(v) for k, v in s.CELERY_BROKER_TRANSPORT_OPTIONS.items()},
    "beat_schedule": s.CELERY_BEAT_SCHEDULE_FILENAME,
    "secret_key": raw.SECRET_KEY,
    "secret_key_file": s.SECRET_KEY_FILE and str(s.SECRET_KEY_FILE),
    "debug": s.DEBUG,
    "allowed_hosts": s.ALLOWED_HOSTS,
    "max_body_bytes": s.MAX_BODY_BYTES,
}))
"""


def show_settings(env: dict[str, str]) -> dict:
    result = run_python(SHOW_SETTINGS, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def import_error(env: dict[str, str]) -> str:
    """The last stderr line of a process that must refuse to load the settings."""
    result = run_python("import gatehouse.settings", env=env)
    assert result.returncode != 0, "settings loaded but should have been refused"
    return result.stderr.strip().splitlines()[-1]


def production_env(tmp_path, **overrides: str) -> dict[str, str]:
    production = {
        "GATEHOUSE_PRODUCTION": "true",
        "GATEHOUSE_SECRET_KEY": secrets.token_urlsafe(60),
        "GATEHOUSE_ALLOWED_HOSTS": "gatehouse.example.com",
        "GATEHOUSE_PUBLIC_URL": "https://gatehouse.example.com",
    }
    return embedded_env(tmp_path, **(production | overrides))


def test_embedded_default_keeps_everything_under_the_data_dir(tmp_path):
    data_dir = tmp_path / "data"
    found = show_settings(embedded_env(data_dir))
    assert found["db_engine"] == "django.db.backends.sqlite3"
    assert found["db_name"] == str(data_dir / "gatehouse.sqlite3")
    assert found["channel_layer"] == "channels.layers.InMemoryChannelLayer"
    assert found["cache"] == "django.core.cache.backends.locmem.LocMemCache"
    assert found["broker"].startswith("filesystem://")
    assert found["broker_options"]["data_folder_in"] == str(data_dir / "broker" / "queue")
    assert found["broker_options"]["control_folder"] == str(data_dir / "broker" / "control")
    assert found["beat_schedule"] == str(data_dir / "celerybeat-schedule")
    assert found["secret_key_file"] == str(data_dir / "secret_key")
    assert found["debug"] is False


def tree(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


@pytest.mark.parametrize("profile", ["embedded", "production"])
def test_importing_settings_with_a_fresh_data_dir_creates_nothing(tmp_path, profile):
    """Reading every setting and setting Django up writes no file and makes no directory."""
    data_dir = tmp_path / "data"
    env = embedded_env(data_dir) if profile == "embedded" else production_env(data_dir)
    before = tree(tmp_path)
    result = run_python(
        "import django; django.setup(); from django.conf import settings;"
        " print(len([getattr(settings, name) for name in dir(settings) if name.isupper()"
        " and name != 'SECRET_KEY']))",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.split()[-1]) > 100  # it did read the settings
    assert not data_dir.exists()
    assert tree(tmp_path) == before


def test_embedded_secret_key_is_read_from_the_prepared_data_dir(tmp_path):
    """No key until ``prepare_data_dir`` generates one; then settings read that key."""
    env = embedded_env(tmp_path)
    assert show_settings(env)["secret_key"] == ""
    assert run_manage("prepare_data_dir", env=env).returncode == 0
    key = show_settings(env)["secret_key"]
    assert len(key) >= 50
    assert key == (tmp_path / "secret_key").read_text().strip()


def test_secret_key_from_the_environment_needs_no_key_file(tmp_path):
    found = show_settings(embedded_env(tmp_path, GATEHOUSE_SECRET_KEY="from-the-environment"))
    assert found["secret_key"] == "from-the-environment"
    assert found["secret_key_file"] is None


def test_database_and_redis_urls_switch_to_postgres_and_redis(tmp_path):
    found = show_settings(embedded_env(
        tmp_path,
        DATABASE_URL="postgres://gh:pw@db.internal:5432/gatehouse",
        REDIS_URL="redis://cache.internal:6379/2",
    ))
    assert found["db_engine"] == "django.db.backends.postgresql"
    assert found["db_name"] == "gatehouse"
    assert found["channel_layer"] == "channels_redis.pubsub.RedisPubSubChannelLayer"
    assert found["channel_hosts"] == ["redis://cache.internal:6379/2"]
    assert found["cache"] == "core.cache.ResilientRedisCache"
    assert found["broker"] == "redis://cache.internal:6379/2"


def test_sqlite_database_url_moves_the_database(tmp_path):
    found = show_settings(embedded_env(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path}/elsewhere.sqlite3"))
    assert found["db_name"] == f"{tmp_path}/elsewhere.sqlite3"


@pytest.mark.parametrize("variable", ["GATEHOUSE_CELERY_BROKER_URL", "CELERY_BROKER_URL"])
def test_explicit_broker_url_wins_over_redis(tmp_path, variable):
    found = show_settings(embedded_env(
        tmp_path, REDIS_URL="redis://cache.internal:6379/0", **{variable: "amqp://guest@mq.internal//"}
    ))
    assert found["broker"] == "amqp://guest@mq.internal//"


@pytest.mark.parametrize("missing", ["GATEHOUSE_SECRET_KEY", "GATEHOUSE_ALLOWED_HOSTS"])
def test_production_refuses_to_start_without_required_setting(tmp_path, missing):
    env = production_env(tmp_path)
    del env[missing]
    error = import_error(env)
    assert "ImproperlyConfigured" in error
    assert f"{missing} is required" in error


def test_production_refuses_debug(tmp_path):
    assert "GATEHOUSE_DEBUG must be off" in import_error(production_env(tmp_path, GATEHOUSE_DEBUG="true"))


def test_production_reads_allowed_hosts_as_a_list(tmp_path):
    found = show_settings(production_env(tmp_path, GATEHOUSE_ALLOWED_HOSTS="a.example.com, b.example.com"))
    assert found["allowed_hosts"] == ["a.example.com", "b.example.com"]


def test_invalid_value_stops_startup_naming_the_variable(tmp_path):
    error = import_error(embedded_env(tmp_path, GATEHOUSE_MAX_BODY_BYTES="abc"))
    assert error.endswith("ImproperlyConfigured: GATEHOUSE_MAX_BODY_BYTES must be an integer (got 'abc').")


def test_boolean_that_is_not_a_boolean_stops_startup(tmp_path):
    error = import_error(embedded_env(tmp_path, GATEHOUSE_PRODUCTION="yes please"))
    assert "GATEHOUSE_PRODUCTION must be a boolean" in error


def test_bad_database_url_is_named_without_echoing_its_password(tmp_path):
    error = import_error(embedded_env(tmp_path, DATABASE_URL="nosuchdb://user:hunter2@host/db"))
    assert "DATABASE_URL must be" in error
    assert "hunter2" not in error


def test_empty_value_means_unset(tmp_path):
    found = show_settings(embedded_env(tmp_path, GATEHOUSE_MAX_BODY_BYTES="", GATEHOUSE_DEBUG=""))
    assert found["max_body_bytes"] == 4 * 1024 * 1024
    assert found["debug"] is False


def test_production_profile_passes_check_deploy_without_warnings(tmp_path):
    env = production_env(tmp_path)
    assert run_manage("prepare_data_dir", env=env).returncode == 0  # the broker's folders
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output
    assert "WARNINGS" not in output


def test_development_profile_is_what_check_deploy_warns_about(tmp_path):
    """The check above is meaningful: without the production profile, --deploy does complain."""
    env = embedded_env(tmp_path)
    assert run_manage("prepare_data_dir", env=env).returncode == 0
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode != 0
    assert "security.W004" in result.stdout + result.stderr  # no HSTS
