"""Generated gRPC stubs for proto/informerd/v1/informerd.proto (see ../../generate_stubs.sh)."""
