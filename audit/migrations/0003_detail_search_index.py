"""Free-text search over ``detail`` on PostgreSQL: a trigram GIN index on the upper-cased text.

It serves ``UPPER(detail::text) LIKE UPPER('%term%')``, which is what the console's search
(``__icontains`` on the text of the JSON) compiles to, so substring search at a million events
reads a few index pages instead of every row. pg_trgm ships with PostgreSQL and is a trusted
extension (a database owner may create it). If it cannot be created, the migration still
succeeds and the console falls back to its bounded scan (see ``audit.selectors``). SQLite has no
such index; there the bounded scan is the design.
"""

from django.db import migrations, transaction

INDEX = "audit_detail_trgm_idx"


def create_search_index(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except Exception as exc:  # noqa: BLE001 - no privilege: search falls back to the bounded scan
        print(f"\n  audit: pg_trgm unavailable ({type(exc).__name__}); detail search will scan.")
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON audit_auditevent "
            "USING gin (UPPER((detail)::text) gin_trgm_ops)"
        )


def drop_search_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_indexes")]

    operations = [migrations.RunPython(create_search_index, drop_search_index)]
