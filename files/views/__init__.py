"""The HTTP API of the files app, by resource: what a file holds (`content`: write, read, share
links' downloads), files and folders in the tree (`files`, `folders`), the trash (`trash`), share
links (`links`), and the service itself (`service`: /me, health, the OpenAPI document). Each view
parses its request, calls one operation and builds the answer (`answers`); errors are exceptions
(labdropbox.api.errors) that `api_view` turns into JSON."""
