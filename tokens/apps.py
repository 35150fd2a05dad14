from django.apps import AppConfig


class TokensConfig(AppConfig):
    name = "tokens"
    verbose_name = "Tokens"

    def ready(self) -> None:
        from audit.subjects import install_token_lookup
        from tokens.selectors import token_subject

        # The audit pages link an event to its token; audit cannot import tokens (it is below).
        install_token_lookup(token_subject)
        _publish_changes()
        _enforce_grants_on_group_changes()


def _publish_changes() -> None:
    """What makes a cached token verdict wrong (``core.changes``, ``gateway.admission.caches``)."""
    from django.contrib.auth import get_user_model

    from core import changes
    from tokens.issuers.models import DeniedSubject, TrustedIssuer
    from tokens.models import SigningKey, Token

    changes.publish_on_save(Token, changes.TOKEN, key=lambda token: token.jti)
    # An owner deactivated or renamed, a key deleted, an issuer distrusted or a subject denied:
    # rare, and each may touch many tokens, so every verdict is forgotten.
    changes.publish_on_save(get_user_model(), changes.TOKEN, ignore_fields=frozenset({"last_login"}))
    changes.publish_on_save(SigningKey, changes.TOKEN)
    changes.publish_on_save(TrustedIssuer, changes.TOKEN)
    changes.publish_on_save(DeniedSubject, changes.TOKEN)


def _enforce_grants_on_group_changes() -> None:
    """Someone who leaves a group loses what its grants gave them at once, as when a grant is
    narrowed (``tokens.oauth.grants.enforce_ceilings``), whoever changed the membership (the
    admin, an OIDC sign-in syncing groups, a script)."""
    from django.contrib.auth import get_user_model
    from django.db.models.signals import m2m_changed

    from tokens.oauth.grants import on_membership_changed

    m2m_changed.connect(on_membership_changed, sender=get_user_model().groups.through,
                        dispatch_uid="tokens.oauth.grants.on_membership_changed")
