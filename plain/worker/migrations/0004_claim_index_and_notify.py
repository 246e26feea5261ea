"""Database-specific objects the ORM cannot declare.

- ``plainworker_jobrequest_claim``: the index behind the claim's ORDER BY
  (``claims.CLAIM_ORDER``). PostgreSQL needs NULLS FIRST spelled out; SQLite
  sorts NULLs first in an ascending index and rejects the keyword.
- PostgreSQL only: a statement trigger that sends
  ``NOTIFY plainworker_jobrequest, '<queue>'`` for every queue that received
  requests, delivered on commit (``wakeup.py`` listens for it).
"""

from plain.models import migrations

POSTGRES_FORWARD = [
    "CREATE INDEX plainworker_jobrequest_claim ON plainworker_jobrequest "
    "(queue, priority DESC, start_at ASC NULLS FIRST, id)",
    """
    CREATE OR REPLACE FUNCTION plainworker_notify_jobrequest() RETURNS trigger AS $$
    BEGIN
        PERFORM pg_notify('plainworker_jobrequest', queue)
        FROM (SELECT DISTINCT queue FROM plainworker_new_requests) AS queues;
        RETURN NULL;
    END;
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER plainworker_jobrequest_notify
    AFTER INSERT ON plainworker_jobrequest
    REFERENCING NEW TABLE AS plainworker_new_requests
    FOR EACH STATEMENT EXECUTE FUNCTION plainworker_notify_jobrequest()
    """,
]

SQLITE_FORWARD = [
    "CREATE INDEX plainworker_jobrequest_claim ON plainworker_jobrequest "
    "(queue, priority DESC, start_at ASC, id)",
]


def _run(statements_by_vendor):
    def run(models_registry, schema_editor):
        for statement in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("plainworker", "0003_worker_tracking"),
    ]

    operations = [
        migrations.RunPython(
            _run({"postgresql": POSTGRES_FORWARD, "sqlite": SQLITE_FORWARD}),
        ),
    ]
