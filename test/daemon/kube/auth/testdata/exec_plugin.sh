#!/bin/sh
# A client-go exec credential plugin for test/daemon/kube/auth/exec_plugin_test.cc and kubeconfig_test.cc.
#   exec_plugin.sh token API_VERSION PREFIX [EXPIRATION_TIMESTAMP]
#       prints the token PREFIX-N, where N counts the runs so far
#   exec_plugin.sh cert API_VERSION CERT_FILE KEY_FILE [EXPIRATION_TIMESTAMP]
#       prints the certificate and key read from the files
#   exec_plugin.sh raw TEXT
#       prints TEXT as it is
# Every run appends a line to $RUNS_FILE; $KUBERNETES_EXEC_INFO is saved to $EXEC_INFO_FILE and
# $PLUGIN_GREETING (an exec.env variable) to $GREETING_FILE when those are set.
set -eu
runs_file=${RUNS_FILE:-/dev/null}
echo run >>"$runs_file"
runs=$(wc -l <"$runs_file" | tr -d ' ')
if [ -n "${EXEC_INFO_FILE:-}" ]; then printf '%s' "${KUBERNETES_EXEC_INFO:-}" >"$EXEC_INFO_FILE"; fi
if [ -n "${GREETING_FILE:-}" ]; then printf '%s' "${PLUGIN_GREETING:-}" >"$GREETING_FILE"; fi

# A file's contents as a JSON string body (newlines escaped).
json_text() { awk '{ printf "%s\\n", $0 }' "$1"; }

mode=$1
shift
case "$mode" in
  token)
    expiry=""
    if [ -n "${3:-}" ]; then expiry=",\"expirationTimestamp\":\"$3\""; fi
    printf '{"apiVersion":"%s","kind":"ExecCredential","status":{"token":"%s-%s"%s}}\n' \
      "$1" "$2" "$runs" "$expiry"
    ;;
  cert)
    expiry=""
    if [ -n "${4:-}" ]; then expiry=",\"expirationTimestamp\":\"$4\""; fi
    printf '{"apiVersion":"%s","kind":"ExecCredential","status":{"clientCertificateData":"%s","clientKeyData":"%s"%s}}\n' \
      "$1" "$(json_text "$2")" "$(json_text "$3")" "$expiry"
    ;;
  raw)
    printf '%s\n' "$1"
    ;;
esac
