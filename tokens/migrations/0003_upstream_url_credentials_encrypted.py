"""Upstream URL credentials at rest: encrypted like the header values, never in ``url``.

Rows saved before this migration may hold ``user:pass@`` or ``?api_key=…`` in ``url``; each such
URL moves, whole, into ``url_encrypted`` and ``url`` keeps its redacted form. Reversible: going
back puts the whole URL into ``url`` again.
"""

from django.db import migrations, models

from tokens import crypto
from upstreams.url import redacted_url


def seal_urls(apps, schema_editor):
    UpstreamServer = apps.get_model("tokens", "UpstreamServer")
    for server in UpstreamServer.objects.filter(url_encrypted=""):
        shown = redacted_url(server.url)
        if shown != server.url:
            server.url_encrypted, server.url = crypto.encrypt(server.url), shown
            server.save(update_fields=["url", "url_encrypted"])


def unseal_urls(apps, schema_editor):
    UpstreamServer = apps.get_model("tokens", "UpstreamServer")
    for server in UpstreamServer.objects.exclude(url_encrypted=""):
        server.url, server.url_encrypted = crypto.decrypt(server.url_encrypted), ""
        server.save(update_fields=["url", "url_encrypted"])


class Migration(migrations.Migration):

    dependencies = [
        ("tokens", "0002_token_constraints_and_key_pruning"),
    ]

    operations = [
        migrations.AddField(
            model_name="upstreamserver",
            name="url_encrypted",
            field=models.TextField(blank=True, default=""),
        ),
        migrations.RunPython(seal_urls, unseal_urls),
    ]
