from django.apps import AppConfig


class UpstreamsConfig(AppConfig):
    name = "upstreams"
    verbose_name = "Upstream servers"

    def ready(self) -> None:
        from core import changes
        from upstreams.models import ApprovedTool, ConnectedAccount, UpstreamServer

        # What makes a cached upstream target wrong (``core.changes``, ``gateway.admission.caches``): any
        # edit of a server (a rename included, hence everything) or of its approved tools, and a
        # new one too (a server deleted and made again under its name has a new id).
        changes.publish_on_save(UpstreamServer, changes.SERVER, on_create=True)
        changes.publish_on_save(ApprovedTool, changes.SERVER, on_create=True)
        # A person's credential cached by the gateway: forgotten when connected again, refreshed,
        # broken or disconnected (a new row too: a refusal is never cached, but be plain).
        changes.publish_on_save(ConnectedAccount, changes.ACCOUNT, key=lambda account: account.change_key,
                                on_create=True)
