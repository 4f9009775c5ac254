package cache

import (
	"context"
	"os"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TokenCredentials sends a bearer token with every call ("authorization: Bearer <token>"), for
// grpc.WithPerRPCCredentials or Options.CallOptions (grpc.PerRPCCredentials). TokenFile (a
// projected ServiceAccount token, which the kubelet rotates) is read again for every call.
// informerd's rule: a token travels over TLS; AllowInsecure sends it in plaintext too (a unix
// socket, loopback, or tests).
type TokenCredentials struct {
	Token, TokenFile string
	AllowInsecure    bool
}

func (c TokenCredentials) GetRequestMetadata(ctx context.Context, uri ...string) (map[string]string, error) {
	token := c.Token
	if c.TokenFile != "" {
		// A rotated token may be missing for a moment: UNAVAILABLE, which the Informer
		// retries with backoff (gRPC would make any other error UNAUTHENTICATED, fatal).
		data, err := os.ReadFile(c.TokenFile)
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "reading the bearer token: %v", err)
		}
		if token = strings.TrimSpace(string(data)); token == "" {
			return nil, status.Errorf(codes.Unavailable, "the bearer token file %s is empty", c.TokenFile)
		}
	}
	if token == "" {
		return nil, nil
	}
	return map[string]string{"authorization": "Bearer " + token}, nil
}

func (c TokenCredentials) RequireTransportSecurity() bool { return !c.AllowInsecure }
