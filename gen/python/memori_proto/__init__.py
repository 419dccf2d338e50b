"""Generated protobuf and gRPC stubs of memori.v1 (buf generate)."""
