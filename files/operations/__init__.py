"""One module per operation on stored files: write, read, delete. Views call these; these call
the metadata layer (files.metadata) and the chunk stores (files.storage)."""
