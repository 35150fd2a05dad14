"""The first administrator is created once, and its password is printed that one time only."""

from __future__ import annotations

import re
from io import StringIO

from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command

from tests.factories import UserFactory


def bootstrap() -> str:
    out = StringIO()
    call_command("bootstrap_admin", stdout=out)
    return out.getvalue()


def test_first_run_creates_a_superuser_and_prints_a_working_password(db):
    output = bootstrap()
    password = re.search(r"password: (\S+)", output).group(1)
    assert "username: admin" in output
    assert len(password) >= 20
    admin = authenticate(username="admin", password=password)
    assert admin is not None and admin.is_superuser and admin.is_staff


def test_second_run_creates_nothing_and_prints_no_password(db):
    first = bootstrap()
    password = re.search(r"password: (\S+)", first).group(1)
    second = bootstrap()
    assert "password" not in second and password not in second
    assert "already exists" in second
    assert get_user_model().objects.filter(is_superuser=True).count() == 1


def test_existing_superuser_means_no_bootstrap(db):
    UserFactory(username="ops", is_staff=True, is_superuser=True)
    assert "password" not in bootstrap()
    assert not get_user_model().objects.filter(username="admin").exists()


def test_plain_user_named_admin_is_left_alone(db):
    UserFactory(username="admin")
    output = bootstrap()
    assert "password" not in output and "createsuperuser" in output
    assert not get_user_model().objects.get(username="admin").is_superuser
