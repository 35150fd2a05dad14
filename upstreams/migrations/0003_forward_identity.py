"""Identity to upstreams: two per-server settings, off by default (reversible: drops the columns)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("upstreams", "0002_transport_from_registry"),
    ]

    operations = [
        migrations.AddField(
            model_name="upstreamserver",
            name="forward_identity",
            field=models.BooleanField(
                default=False, help_text="Send a signed identity assertion (who calls) with every request."
            ),
        ),
        migrations.AddField(
            model_name="upstreamserver",
            name="identity_header",
            field=models.CharField(
                default="Authorization",
                help_text="The header that carries the assertion (Authorization: Bearer …, or the bare JWT).",
                max_length=64,
            ),
        ),
    ]
