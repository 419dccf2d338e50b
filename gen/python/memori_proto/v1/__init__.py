"""Generated stubs of the memori.v1 package."""
