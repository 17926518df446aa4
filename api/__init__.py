"""HTTP API (FastAPI) and the `liuhen` command line."""
