"""memori-grpc server."""
