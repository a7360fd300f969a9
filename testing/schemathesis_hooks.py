"""Loaded by schemathesis (SCHEMATHESIS_HOOKS) in the OpenAPI test: tus PATCH bodies are bytes."""

import schemathesis
from hypothesis import strategies as st

schemathesis.openapi.media_type("application/offset+octet-stream", st.binary(max_size=4096))
