"""``UpstreamServer`` moves from ``tokens`` to ``upstreams``: a state-only move, no data touched.

The table keeps its name (``tokens_upstreamserver``), so nothing is copied; Django's state learns
the model's new home, and its content type follows (admin permissions keep working). Reversible:
``tokens.0004`` gives the state back, and the reverse of ``move_content_type`` renames it back.
"""

import django.db.models
from django.db import migrations, models

import upstreams.url


def move_content_type(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="tokens", model="upstreamserver").update(app_label="upstreams")


def move_content_type_back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="upstreams", model="upstreamserver").update(app_label="tokens")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("tokens", "0003_upstream_url_credentials_encrypted"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="UpstreamServer",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("name", models.SlugField(help_text="Used in /mcp/<name>/.", max_length=64, unique=True)),
                        ("url", models.CharField(help_text="The upstream MCP endpoint (http or https).", max_length=500, validators=[upstreams.url.validate_upstream_url])),
                        ("url_encrypted", models.TextField(blank=True, default="")),
                        ("transport", models.CharField(choices=[("streamable", "Streamable HTTP"), ("sse", "HTTP + SSE (legacy)")], default="streamable", max_length=16)),
                        ("description", models.CharField(blank=True, max_length=200)),
                        ("headers_encrypted", models.TextField(blank=True, default="")),
                        ("enabled", models.BooleanField(default=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                    ],
                    options={
                        "ordering": ["name"],
                        "db_table": "tokens_upstreamserver",
                        "constraints": [
                            models.CheckConstraint(
                                condition=django.db.models.Q(("transport__in", ["streamable", "sse"])),
                                name="upstream_transport_known",
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(move_content_type, move_content_type_back),
    ]
