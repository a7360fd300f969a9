"""The trace recorder's models now belong to the `traces` app, which took over their tables
(traces 0001): they leave this app's state, and nothing happens to the database here."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("files", "0003_recorded_span_deletes"),
        ("traces", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="RecordedSpan"),
                migrations.DeleteModel(name="RecordedTrace"),
            ],
            database_operations=[],
        ),
    ]
