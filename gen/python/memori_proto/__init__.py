"""Generated stubs of memori.v1 (buf generate)."""
