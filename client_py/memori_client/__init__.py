"""memori-grpc Python client."""
