from django.apps import AppConfig


class TokensConfig(AppConfig):
    name = "tokens"
    verbose_name = "Tokens"

    def ready(self) -> None:
        from audit.subjects import install_token_lookup
        from tokens.selectors import token_subject

        # The audit pages link an event to its token; audit cannot import tokens (it is below).
        install_token_lookup(token_subject)
