"""The transport is checked against the registry (``upstreams.transports``) on save, not by a
database constraint: adding a transport is one registry entry, no migration of this table."""

import upstreams.transports
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('upstreams', '0001_initial'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='upstreamserver',
            name='upstream_transport_known',
        ),
        migrations.AlterField(
            model_name='upstreamserver',
            name='transport',
            field=models.CharField(choices=upstreams.transports.choices, default='streamable', max_length=16),
        ),
    ]
