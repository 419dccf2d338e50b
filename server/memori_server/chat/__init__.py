"""The chat completion path: request, history, upstream, streaming."""
