"""Files have a place: every owner's tree of folders and files, and what changes it.

`roots` finds a caller's tree and its lock, and walks paths; `place` puts new content at a path
(a new file, or a new version of the one there); `moves` moves, renames, copies and makes
folders; `listing` lists a folder in pages; `trash` trashes, restores and purges; `versions`
lists and restores a file's versions; `collect` removes what nothing needs any more.

Every change to a tree's shape is made under its root's row lock (`roots.locked_tree`), so
moves, trashing, restoring, purging and placing content in one tree happen one at a time: no
cycle, no subtree lost, no file placed in a folder being trashed. Shared content (a blob that
copies and versions of a file point at) is removed only inside the transaction that removes the
last reference to it, under the same lock (`collect.release_blobs`).
"""
