# Upstream session ids (and legacy messages paths) up to 2048 characters: longer ones were cut
# at 200, which made a different, unknown session upstream. Now refused whole, never cut.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('gateway', '0002_index_session_ended_at'),
    ]

    operations = [
        migrations.AlterField(
            model_name='sessionbinding',
            name='upstream_session_id',
            field=models.CharField(blank=True, max_length=2048),
        ),
    ]
