"""The data dir is made by one explicit step, ``manage.py prepare_data_dir`` (``make run`` and
``manage.py serve`` run it first), never by importing settings. Until it has run, commands and
servers stop naming what is missing and the step to run, instead of failing on a missing file."""

from __future__ import annotations

import stat

import pytest

from tests.gatehouse.subprocesses import embedded_env, run_manage, run_python

HINT = "gatehouse prepare_data_dir"


def prepare(env: dict[str, str]) -> str:
    result = run_manage("prepare_data_dir", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.integration
@pytest.mark.own_environment
def test_prepare_makes_the_data_dir_broker_folders_and_a_private_key_once(tmp_path):
    data_dir = tmp_path / "data"
    env = embedded_env(data_dir)
    output = prepare(env)
    assert f"Prepared the data dir {data_dir}" in output
    for folder in ("queue", "processed", "control"):
        assert (data_dir / "broker" / folder).is_dir()
    key_file = data_dir / "secret_key"
    key = key_file.read_text().strip()
    assert len(key) >= 50
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    assert prepare(env) == ""  # nothing left to create, nothing said
    assert key_file.read_text().strip() == key  # the key is never replaced
    assert sorted(path.name for path in data_dir.iterdir()) == ["broker", "secret_key"]


@pytest.mark.integration
@pytest.mark.own_environment
def test_prepare_makes_only_what_the_configuration_uses(tmp_path):
    """A key from the environment is not written down; Redis as the broker needs no folders."""
    data_dir = tmp_path / "data"
    prepare(embedded_env(data_dir, GATEHOUSE_SECRET_KEY="from-the-environment", REDIS_URL="redis://127.0.0.1:1/0"))
    assert data_dir.is_dir()
    assert list(data_dir.iterdir()) == []


@pytest.mark.integration
@pytest.mark.own_environment
def test_migrate_on_a_fresh_data_dir_names_the_step_to_run(tmp_path):
    data_dir = tmp_path / "data"
    result = run_manage("migrate", "--noinput", env=embedded_env(data_dir))
    assert result.returncode != 0
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("CommandError: ") and f"The data dir {data_dir} does not exist yet." in error
    assert HINT in error
    assert "Traceback" not in result.stderr
    assert not data_dir.exists()  # refusing wrote nothing either


@pytest.mark.integration
@pytest.mark.own_environment
def test_other_commands_report_what_is_missing_as_a_system_check(tmp_path):
    env = embedded_env(tmp_path)
    prepare(env)
    assert run_manage("check", env=env).returncode == 0
    (tmp_path / "secret_key").unlink()
    (tmp_path / "broker" / "queue").rmdir()
    result = run_manage("check", env=env)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "(gatehouse.E001)" in output
    assert "is not prepared: secret_key, broker/queue missing." in output
    assert HINT in output and "GATEHOUSE_SECRET_KEY" in output


@pytest.mark.integration
@pytest.mark.own_environment
def test_migrate_after_prepare_works(tmp_path):
    env = embedded_env(tmp_path)
    prepare(env)
    result = run_manage("migrate", "--noinput", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "gatehouse.sqlite3").exists()


@pytest.mark.parametrize("prepared", [False, True])
@pytest.mark.integration
@pytest.mark.own_environment
def test_the_asgi_application_refuses_an_unprepared_data_dir(tmp_path, prepared):
    """A server started without ``manage.py serve`` (a bare daphne) on a fresh data dir stops at
    once, naming the step, rather than serving with an empty secret key."""
    env = embedded_env(tmp_path)
    if prepared:
        prepare(env)
    result = run_python("import gatehouse.asgi", env=env)
    if prepared:
        assert result.returncode == 0, result.stderr
    else:
        error = result.stderr.strip().splitlines()[-1]
        assert error.startswith("django.core.exceptions.ImproperlyConfigured: ")
        assert "secret_key" in error and HINT in error


def test_nothing_is_encrypted_with_an_empty_key(settings):
    from django.core.exceptions import ImproperlyConfigured

    from core import encryption

    settings.ENCRYPTION_KEY = ""
    with pytest.raises(ImproperlyConfigured, match="prepare_data_dir"):
        encryption.encrypt("upstream-secret")
