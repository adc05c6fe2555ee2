"""On PostgreSQL, wake the relays at commit: a statement-level trigger NOTIFYs `bus_outbox`.

NOTIFY is delivered only when the inserting transaction commits, and PostgreSQL folds identical
notifications of one transaction into one, so a batch insert costs one wake-up. Other databases
rely on the relay's polling.
"""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

CREATE = """
CREATE OR REPLACE FUNCTION bus_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('bus_outbox', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER bus_outbox_notify AFTER INSERT ON bus_outboxmessage
    FOR EACH STATEMENT EXECUTE FUNCTION bus_outbox_notify();
"""
DROP = """
DROP TRIGGER IF EXISTS bus_outbox_notify ON bus_outboxmessage;
DROP FUNCTION IF EXISTS bus_outbox_notify();
"""


def create(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("bus", "0001_outbox")]
    operations = [migrations.RunPython(create, drop)]
