"""The API layer every app builds its endpoints on, as Django REST framework keeps its exceptions
and views apart from any one resource: the errors (`errors`), the callers requests act for
(`callers`), the `api_view` decorator (`views`), and the parsing of requests into plain values
(`requests`, `bodies`). It imports no app: the apps import it."""
