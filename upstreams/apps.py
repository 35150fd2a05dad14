from django.apps import AppConfig


class UpstreamsConfig(AppConfig):
    name = "upstreams"
    verbose_name = "Upstream servers"

    def ready(self) -> None:
        from core import changes
        from upstreams.models import ApprovedTool, UpstreamServer

        # What makes a cached upstream target wrong (``core.changes``, ``gateway.admission.caches``): any
        # edit of a server (a rename included, hence everything) or of its approved tools, and a
        # new one too (a server deleted and made again under its name has a new id).
        changes.publish_on_save(UpstreamServer, changes.SERVER, on_create=True)
        changes.publish_on_save(ApprovedTool, changes.SERVER, on_create=True)
