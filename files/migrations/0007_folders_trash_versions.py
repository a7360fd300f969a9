"""Folders, trash and versions.

Until now a File row was one content and its name at once. It becomes a Blob (the table is
renamed; ids, chunk rows and chunk objects stay as they are), and every file gets an Entry in its
owner's tree with the same id — so links, bookmarks and `/read/{id}` keep working — and a first
Version pointing at the blob, also with the same id. Files of no one go into the shared tree. Two
files that now share a folder and a name (the old list allowed that) are told apart the way a
file manager would: `report (2).pdf`.
"""

import uuid

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models
from django.db.models import F

from files.names import MAX_NAME_BYTES, name_key, numbered, sort_name

BATCH = 1000


def placeable(name: str) -> str:
    """An old name as a name in a folder: no '/', not '.' or '..', at most 255 bytes."""
    import unicodedata

    name = unicodedata.normalize("NFC", name).replace("/", "_").strip() or "unnamed"
    if name in (".", ".."):
        name = f"{name}_"
    while len(name.encode()) > MAX_NAME_BYTES:
        name = name[:-1]
    return name


def free_name(name: str, taken: set[str]) -> str:
    candidate, number = name, 1
    while name_key(candidate) in taken:
        number += 1
        candidate = numbered(name, number)
    taken.add(name_key(candidate))
    return candidate


def files_into_trees(apps, schema_editor):
    Blob = apps.get_model("files", "Blob")
    Entry = apps.get_model("files", "Entry")
    Version = apps.get_model("files", "Version")
    roots: dict[object, object] = {}
    taken: dict[object, set[str]] = {}

    def root_of(owner_id):
        if owner_id not in roots:
            roots[owner_id] = Entry.objects.create(
                kind=0,
                owner_id=owner_id,
                name="",
                name_key=name_key(""),
                sort_name="",
                root_key="shared" if owner_id is None else f"user:{owner_id}",
            )
            taken[owner_id] = set()
        return roots[owner_id]

    blobs = Blob.objects.order_by("created_at", "id")
    for start in range(0, blobs.count(), BATCH):
        entries, versions = [], []
        for blob in blobs[start : start + BATCH]:
            root = root_of(blob.owner_id)
            name = free_name(placeable(blob.name), taken[blob.owner_id])
            entries.append(
                Entry(
                    id=blob.id,
                    kind=1,
                    owner_id=blob.owner_id,
                    parent=root,
                    name=name,
                    name_key=name_key(name),
                    sort_name=sort_name(name),
                    created_at=blob.created_at,
                    modified_at=blob.created_at,
                    size=blob.size,
                    sha256=blob.sha256,
                )
            )
            versions.append(
                Version(id=blob.id, file_id=blob.id, blob=blob, created_at=blob.created_at)
            )
        # Entries, then their versions, then the entries point at them (MySQL checks foreign
        # keys statement by statement; a file's first version has the file's id).
        Entry.objects.bulk_create(entries)
        Version.objects.bulk_create(versions)
        Entry.objects.filter(pk__in=[entry.id for entry in entries]).update(current_id=F("id"))


def trees_into_files(apps, schema_editor):
    """Back: each file's current content under its name and owner (older versions, folders and
    the trash are not kept)."""
    Blob = apps.get_model("files", "Blob")
    Entry = apps.get_model("files", "Entry")
    for entry in Entry.objects.filter(kind=1).exclude(current=None).select_related("current"):
        Blob.objects.filter(pk=entry.current.blob_id).update(name=entry.name, owner=entry.owner_id)


class Migration(migrations.Migration):
    dependencies = [
        ("files", "0006_owners_and_share_links"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # --- A File was one content: it is a Blob now --------------------------------------------
        migrations.RemoveIndex(model_name="file", name="file_owner_listing"),
        migrations.RenameModel(old_name="File", new_name="Blob"),
        migrations.AlterModelOptions(name="blob", options={}),
        migrations.AddField(
            model_name="blob",
            name="state",
            field=models.PositiveSmallIntegerField(
                choices=[(0, "being written"), (1, "stored")], default=1
            ),
        ),
        migrations.AddField(
            model_name="blob",
            name="lease_expires_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="blob",
            name="created_at",
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.AlterField(
            model_name="blob",
            name="size",
            field=models.PositiveBigIntegerField(default=0, help_text="bytes"),
        ),
        migrations.AlterField(
            model_name="blob",
            name="sha256",
            field=models.CharField(blank=True, max_length=64, verbose_name="SHA-256"),
        ),
        migrations.AlterField(
            model_name="blob",
            name="chunk_count",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddIndex(
            model_name="blob",
            index=models.Index(fields=["state", "lease_expires_at"], name="blob_writing_lease"),
        ),
        # A chunk's `file` is its blob: the same column, so only the model's state changes.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(model_name="chunk", name="pk"),
                migrations.RenameField(model_name="chunk", old_name="file", new_name="blob"),
                migrations.AlterField(
                    model_name="chunk",
                    name="blob",
                    field=models.ForeignKey(
                        db_column="file_id",
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="chunks",
                        to="files.blob",
                    ),
                ),
                migrations.AddField(
                    model_name="chunk",
                    name="pk",
                    field=models.CompositePrimaryKey(
                        "blob_id",
                        "index",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                migrations.AlterModelOptions(
                    name="chunk", options={"ordering": ["blob_id", "index"]}
                ),
            ]
        ),
        # --- The trees, the trash, the versions ---------------------------------------------------
        migrations.CreateModel(
            name="Entry",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("kind", models.PositiveSmallIntegerField(choices=[(0, "folder"), (1, "file")])),
                ("name", models.CharField(blank=True, max_length=255)),
                ("name_key", models.CharField(editable=False, max_length=64)),
                ("sort_name", models.CharField(editable=False, max_length=255)),
                (
                    "created_at",
                    models.DateTimeField(db_index=True, default=django.utils.timezone.now),
                ),
                ("modified_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("size", models.PositiveBigIntegerField(default=0, help_text="bytes")),
                ("sha256", models.CharField(blank=True, max_length=64, verbose_name="SHA-256")),
                (
                    "root_key",
                    models.CharField(
                        blank=True, editable=False, max_length=40, null=True, unique=True
                    ),
                ),
                (
                    "owner",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "parent",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="children",
                        to="files.entry",
                    ),
                ),
            ],
            options={"verbose_name_plural": "entries"},
        ),
        migrations.CreateModel(
            name="Version",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "replaced_at",
                    models.DateTimeField(blank=True, help_text="empty: current", null=True),
                ),
                (
                    "blob",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="versions",
                        to="files.blob",
                    ),
                ),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "file",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="versions",
                        to="files.entry",
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at"],
                "indexes": [
                    models.Index(fields=["file", "-created_at"], name="version_history"),
                    models.Index(fields=["replaced_at"], name="version_retention"),
                ],
            },
        ),
        migrations.CreateModel(
            name="TrashEntry",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("original_path", models.TextField()),
                (
                    "trashed_at",
                    models.DateTimeField(db_index=True, default=django.utils.timezone.now),
                ),
                (
                    "entry",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="trashed_as",
                        to="files.entry",
                    ),
                ),
                (
                    "owner",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "root",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="files.entry",
                    ),
                ),
                (
                    "trashed_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "trash entry",
                "verbose_name_plural": "trash",
                "ordering": ["-trashed_at"],
            },
        ),
        migrations.AddField(
            model_name="entry",
            name="current",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="files.version",
            ),
        ),
        migrations.AddField(
            model_name="entry",
            name="trash",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="files.trashentry",
            ),
        ),
        migrations.AddConstraint(
            model_name="entry",
            constraint=models.UniqueConstraint(
                fields=["parent", "name_key"], name="entry_unique_name"
            ),
        ),
        migrations.AddIndex(
            model_name="entry",
            index=models.Index(fields=["parent", "kind", "sort_name", "id"], name="entry_by_name"),
        ),
        migrations.AddIndex(
            model_name="entry",
            index=models.Index(
                fields=["parent", "kind", "modified_at", "id"], name="entry_by_modified"
            ),
        ),
        migrations.AddIndex(
            model_name="entry",
            index=models.Index(fields=["parent", "kind", "size", "id"], name="entry_by_size"),
        ),
        migrations.AddIndex(
            model_name="entry",
            index=models.Index(fields=["owner", "kind", "-created_at"], name="entry_flat_listing"),
        ),
        migrations.AddField(
            model_name="upload",
            name="path",
            field=models.TextField(blank=True),
        ),
        migrations.AddField(
            model_name="upload",
            name="file",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="files.entry",
            ),
        ),
        # --- Every file into its owner's tree -----------------------------------------------------
        migrations.RunPython(files_into_trees, trees_into_files, elidable=False),
        # A link is to the file, wherever it goes and whatever its version (the same ids).
        migrations.AlterField(
            model_name="sharelink",
            name="file",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="links", to="files.entry"
            ),
        ),
        # A default, so that the column can come back (empty) if the migration is undone.
        migrations.AlterField(
            model_name="blob", name="name", field=models.CharField(default="", max_length=255)
        ),
        migrations.RemoveField(model_name="blob", name="name"),
        migrations.RemoveField(model_name="blob", name="owner"),
        migrations.CreateModel(
            name="File",
            fields=[],
            options={"proxy": True, "indexes": [], "constraints": []},
            bases=("files.entry",),
        ),
        migrations.CreateModel(
            name="Folder",
            fields=[],
            options={"proxy": True, "indexes": [], "constraints": []},
            bases=("files.entry",),
        ),
    ]
