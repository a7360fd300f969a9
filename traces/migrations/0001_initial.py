"""The trace recorder's tables, adopted from the `files` app where they were first created.

A database that already has `files_recordedtrace` and `files_recordedspan` keeps their rows:
the models enter this app's state as they are, the tables are renamed, and the content types
follow (so permissions granted on traces and admin history stay attached). A new database gets
the tables from `files` 0002 and then the same renames.
"""

import django.db.models.deletion
from django.db import migrations, models

MODELS = ["recordedtrace", "recordedspan"]


def move_content_types(apps, schema_editor, source: str, target: str) -> None:
    content_type = apps.get_model("contenttypes", "ContentType")
    content_type.objects.using(schema_editor.connection.alias).filter(
        app_label=source, model__in=MODELS
    ).update(app_label=target)


def content_types_to_traces(apps, schema_editor) -> None:
    move_content_types(apps, schema_editor, "files", "traces")


def content_types_to_files(apps, schema_editor) -> None:
    move_content_types(apps, schema_editor, "traces", "files")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("files", "0003_recorded_span_deletes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="RecordedTrace",
                    fields=[
                        (
                            "trace_id",
                            models.CharField(max_length=32, primary_key=True, serialize=False),
                        ),
                        ("name", models.CharField(max_length=200, verbose_name="operation")),
                        (
                            "file_id",
                            models.UUIDField(
                                blank=True, db_index=True, null=True, verbose_name="file"
                            ),
                        ),
                        ("started_at", models.DateTimeField(db_index=True)),
                        ("duration_ms", models.FloatField(verbose_name="duration (ms)")),
                        ("span_count", models.PositiveIntegerField(verbose_name="spans")),
                        ("cache_hit", models.BooleanField(null=True)),
                        ("error", models.BooleanField(default=False)),
                    ],
                    options={
                        "verbose_name": "trace",
                        "ordering": ["-started_at"],
                        "db_table": "files_recordedtrace",
                    },
                ),
                migrations.CreateModel(
                    name="RecordedSpan",
                    fields=[
                        (
                            "pk",
                            models.CompositePrimaryKey(
                                "trace_id",
                                "span_id",
                                blank=True,
                                editable=False,
                                primary_key=True,
                                serialize=False,
                            ),
                        ),
                        ("span_id", models.CharField(max_length=16)),
                        ("parent_id", models.CharField(blank=True, max_length=16)),
                        ("name", models.CharField(max_length=200)),
                        ("kind", models.CharField(max_length=16)),
                        (
                            "start_ns",
                            models.BigIntegerField(help_text="nanoseconds since the epoch"),
                        ),
                        ("end_ns", models.BigIntegerField(help_text="nanoseconds since the epoch")),
                        ("error", models.BooleanField(default=False)),
                        ("status_message", models.TextField(blank=True)),
                        ("attributes", models.JSONField(default=dict)),
                        ("events", models.JSONField(default=list)),
                        (
                            "trace",
                            models.ForeignKey(
                                db_index=False,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="spans",
                                to="traces.recordedtrace",
                            ),
                        ),
                    ],
                    options={
                        "ordering": ["trace_id", "start_ns"],
                        "db_table": "files_recordedspan",
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.AlterModelTable(name="recordedtrace", table=None),
        migrations.AlterModelTable(name="recordedspan", table=None),
        migrations.RunPython(content_types_to_traces, content_types_to_files),
    ]
