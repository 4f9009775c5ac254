#!/bin/sh
# An exec credential plugin that fails the way real ones do: a message on stderr, exit status 3.
echo "error: refreshing the SSO session: the session has expired; run 'example-login'" >&2
exit 3
