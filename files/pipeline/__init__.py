"""The chunk pipeline: storing chunks as a body arrives (`upload`), fetching them in parallel
and verified (`fetch`). Every operation that moves chunk bytes goes through it."""
