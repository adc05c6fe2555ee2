"""Dead letters get a table (they were read from the queue on every listing)."""

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("bus", "0006_outbox_lease_holder"),
    ]

    operations = [
        # the old model had no table (managed = False): nothing is dropped; its content type and
        # permissions stay, for the model of the same name created next
        migrations.DeleteModel(name="DeadLetter"),
        migrations.CreateModel(
            name="DeadLetter",
            fields=[
                ("id", models.CharField(help_text="The dead-letter id.", max_length=64, primary_key=True, serialize=False)),
                ("parked_at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                ("event_type", models.CharField(blank=True, max_length=200)),
                ("event_id", models.CharField(blank=True, db_index=True, max_length=200)),
                ("kind", models.CharField(max_length=64)),
                ("reason", models.TextField(blank=True)),
                ("exception_type", models.CharField(blank=True, max_length=300)),
                ("traceback", models.TextField(blank=True)),
                ("attempts", models.IntegerField(blank=True, null=True)),
                ("service", models.CharField(blank=True, max_length=64)),
                ("first_failure_at", models.CharField(blank=True, max_length=64)),
                ("last_failure_at", models.CharField(blank=True, max_length=64)),
                ("routing_key", models.CharField(blank=True, max_length=300)),
                ("content_type", models.CharField(blank=True, max_length=200)),
                ("content_encoding", models.CharField(blank=True, max_length=100)),
                ("body", models.BinaryField()),
                ("headers", models.JSONField(default=dict, help_text="The message's headers, as parked.")),
                ("properties", models.JSONField(default=dict, help_text="Its AMQP properties but the headers.")),
            ],
            options={
                "verbose_name": "dead letter",
                "default_permissions": ("view", "change"),
            },
        ),
    ]
