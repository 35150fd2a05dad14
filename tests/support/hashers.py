"""The test process hashes passwords with PBKDF2 at 1,000 iterations instead of Django's million.

Same algorithm name and format, so the live servers the tests start (which keep the default
hashers) still verify these hashes; only the work factor, read from each hash, differs. A console
login in the test process costs a millisecond instead of most of a second.
"""

from __future__ import annotations

from django.contrib.auth.hashers import PBKDF2PasswordHasher


class QuickPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    iterations = 1_000


def install_quick_hasher() -> None:
    from django.conf import settings
    from django.contrib.auth import hashers

    settings.PASSWORD_HASHERS = [f"{__name__}.QuickPBKDF2PasswordHasher", *settings.PASSWORD_HASHERS]
    hashers.get_hashers.cache_clear()
    hashers.get_hashers_by_algorithm.cache_clear()
