"""Long-term memory: passages of earlier sessions, indexed for hybrid search (opt-in)."""
