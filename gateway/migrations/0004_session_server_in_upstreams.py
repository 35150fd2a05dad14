"""Sessions point at ``upstreams.UpstreamServer``: state only, the foreign key column is unchanged."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("gateway", "0003_longer_upstream_session_ids"),
        ("upstreams", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="sessionbinding",
                    name="server",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="sessions",
                        to="upstreams.upstreamserver",
                    ),
                ),
            ],
            database_operations=[],
        ),
    ]
