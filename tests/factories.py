"""Factories for the models every test area needs."""

from __future__ import annotations

from functools import cache

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password

from upstreams.models import UpstreamServer

DEFAULT_PASSWORD = "correct horse battery staple"


@cache
def _default_password_hash() -> str:
    """Hash the shared test password once: PBKDF2 costs ~0.8 s per user otherwise."""
    return make_password(DEFAULT_PASSWORD)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.test")
    password = factory.LazyFunction(_default_password_hash)
    is_staff = False


class StaffUserFactory(UserFactory):
    is_staff = True


class UpstreamServerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UpstreamServer
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"server{n}")
    url = factory.LazyAttribute(lambda s: f"http://127.0.0.1:9/{s.name}/mcp")
    transport = "streamable"
