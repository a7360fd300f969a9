"""One module per operation on stored content: write, read, share links. Views call these;
these call the metadata layer (files.metadata), the tree (files.tree) and the chunk stores
(files.storage). Where a file lives, and its trash and versions, are files.tree's."""
