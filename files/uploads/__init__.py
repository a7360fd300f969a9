"""Resumable uploads: the tus 1.0 protocol at /uploads/, in one package.

`views` (the endpoints) and `headers` (tus headers in and out) speak HTTP; `lifecycle` creates,
finds and terminates uploads; `append` cuts a PATCH's bytes into chunks, `progress` records
them, `lock` is the leased row lock a PATCH holds meanwhile; `commit` turns a finished upload —
alone, or the concatenation of its parts — into a file, and `concatenate` hashes one.
"""
