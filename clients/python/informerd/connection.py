"""Channels and credentials for informerd, with the checks of examples/python/informer_client.py.

informerd authenticates every call (README "Security model"): a bearer token in the
"authorization: Bearer <token>" call metadata, checked with a TokenReview, or a TLS client
certificate. A token travels over TLS, or in plaintext only to a unix socket or a loopback
address (informerctl's rule): anything else is refused before a byte is sent. A token file (a
projected ServiceAccount token, which the kubelet rotates) is read again for every call.
"""
import ipaddress

import grpc

__all__ = ["Credentials", "is_local"]


def is_local(address):
    """Whether a gRPC target is this machine only: a unix socket or a loopback address."""
    if address.startswith(("unix:", "unix-abstract:")):
        return True
    host = address[len("dns:///"):] if address.startswith("dns:///") else address
    if host.startswith("["):
        host = host[1:host.find("]")]
    elif host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Credentials:
    """How to reach informerd: TLS or not, and the token to send.

    ca_file: PEM CA that signed informerd's certificate (TLS); tls=True: TLS trusting the
    system's CAs; client_cert_file/client_key_file: a client certificate (TLS); token or
    token_file: a bearer token (mutually exclusive). allow_plaintext_token=True sends a token
    over plaintext to a non-local address anyway (only for tests or a trusted network)."""

    def __init__(self, token=None, token_file=None, ca_file=None, tls=False,
                 client_cert_file=None, client_key_file=None, allow_plaintext_token=False):
        if token and token_file:
            raise ValueError("give token or token_file, not both")
        if bool(client_cert_file) != bool(client_key_file):
            raise ValueError("client_cert_file and client_key_file go together")
        self.token, self.token_file = token, token_file
        self.ca_file = ca_file
        self.tls = bool(tls or ca_file or client_cert_file)
        self.client_cert_file, self.client_key_file = client_cert_file, client_key_file
        self.allow_plaintext_token = allow_plaintext_token

    def check_address(self, address):
        """Raises ValueError if a token would go in plaintext to another machine."""
        if ((self.token or self.token_file) and not self.tls and not self.allow_plaintext_token
                and not is_local(address)):
            raise ValueError("refusing to send a bearer token in plaintext to %s: use TLS "
                             "(ca_file or tls=True)" % address)

    def channel_credentials(self):
        def read(path):
            with open(path, "rb") as f:
                return f.read()
        return grpc.ssl_channel_credentials(
            root_certificates=read(self.ca_file) if self.ca_file else None,
            private_key=read(self.client_key_file) if self.client_key_file else None,
            certificate_chain=read(self.client_cert_file) if self.client_cert_file else None)

    def open_channel(self, address, options=None, aio=False):
        """A new channel to `address` (grpc.aio's with aio=True)."""
        self.check_address(address)
        module = grpc.aio if aio else grpc
        if self.tls:
            return module.secure_channel(address, self.channel_credentials(), options=options)
        return module.insecure_channel(address, options=options)

    def metadata(self):
        """The call metadata: the token, read from token_file now; () without a token."""
        value = self.token
        if self.token_file:
            with open(self.token_file) as f:
                value = f.read().strip()
            if not value:
                raise ValueError("the bearer token file %s is empty" % self.token_file)
        return (("authorization", "Bearer " + value),) if value else ()
