"""``UpstreamServer`` now lives in the ``upstreams`` app (see ``upstreams.0001``): state only."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("tokens", "0003_upstream_url_credentials_encrypted"),
        ("upstreams", "0001_initial"),
        ("gateway", "0004_session_server_in_upstreams"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="UpstreamServer")],
            database_operations=[],
        ),
    ]
