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


def _publish_changes() -> None:
    """What makes a cached token verdict wrong (``gatehouse.changes``, ``gateway.admission.caches``)."""
    from django.contrib.auth import get_user_model

    from gatehouse import changes
    from tokens.issuers.models import DeniedSubject, TrustedIssuer
    from tokens.models import SigningKey, Token

    changes.publish_on_save(Token, changes.TOKEN, key=lambda token: token.jti)
    # An owner deactivated or renamed, a key deleted, an issuer distrusted or a subject denied:
    # rare, and each may touch many tokens, so every verdict is forgotten.
    changes.publish_on_save(get_user_model(), changes.TOKEN, ignore_fields=frozenset({"last_login"}))
    changes.publish_on_save(SigningKey, changes.TOKEN)
    changes.publish_on_save(TrustedIssuer, changes.TOKEN)
    changes.publish_on_save(DeniedSubject, changes.TOKEN)
