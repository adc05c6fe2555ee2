"""Wake the relays only for rows they may take: a row inserted under a lease (its own process
publishes it on commit, `common.bus.outbox.on_commit`) does not NOTIFY. A row-level trigger can see the row;
PostgreSQL still folds a transaction's identical notifications into one wake-up."""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

ROW_LEVEL = """
DROP TRIGGER IF EXISTS bus_outbox_notify ON bus_outboxmessage;
CREATE TRIGGER bus_outbox_notify AFTER INSERT ON bus_outboxmessage
    FOR EACH ROW WHEN (NEW.claimed_until IS NULL) EXECUTE FUNCTION bus_outbox_notify();
"""
STATEMENT_LEVEL = """
DROP TRIGGER IF EXISTS bus_outbox_notify ON bus_outboxmessage;
CREATE TRIGGER bus_outbox_notify AFTER INSERT ON bus_outboxmessage
    FOR EACH STATEMENT EXECUTE FUNCTION bus_outbox_notify();
"""


def row_level(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ROW_LEVEL)


def statement_level(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(STATEMENT_LEVEL)


class Migration(migrations.Migration):
    dependencies = [("bus", "0004_outbox_claims")]
    operations = [migrations.RunPython(row_level, statement_level)]
