"""gRPC servicers: decode requests, call the domain, encode responses."""
