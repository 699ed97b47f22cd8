#!/usr/bin/env bash
# Makes the Secrets the Kubernetes profiles mount (docs/security.md):
#   rlhf-tls-<service>  (type kubernetes.io/tls: tls.crt, tls.key, ca.crt) for each of the five services,
#                       a certificate for its Service names, localhost and 127.0.0.1, signed by a new CA;
#   rlhf-tokens         (keys service, operator, viewer): one random bearer token per role.
# It also leaves a client certificate for people (cli.crt / cli.key, e.g. `rlhf run --coordinator`
# through `kubectl port-forward`) and the tokens as files, all in the output folder, which holds
# the CA's key: keep it somewhere safe, or delete it once the Secrets are applied.
#
#   deploy/make-secrets.sh [--namespace rlhf] [--out ./rlhf-secrets] [--days 365]
#   kubectl apply -f ./rlhf-secrets/secrets.yaml
#
# Rotation: run it again into a new folder, apply, then `kubectl -n rlhf rollout restart deployment`
# (tokens are re-read by the running services as soon as the Secret's files change; certificates
# are read at start). Needs openssl and base64.
set -euo pipefail

NAMESPACE=rlhf
OUT=./rlhf-secrets
DAYS=365
while [ $# -gt 0 ]; do
  case "$1" in
    --namespace) NAMESPACE="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --days) DAYS="$2"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "make-secrets.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if ! [[ "$NAMESPACE" =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]]; then echo "make-secrets.sh: --namespace must be a DNS label, got $NAMESPACE" >&2; exit 2; fi
if ! [[ "$DAYS" =~ ^[0-9]+$ ]]; then echo "make-secrets.sh: --days must be a number, got $DAYS" >&2; exit 2; fi
if [ -e "$OUT" ] && [ -n "$(ls -A "$OUT" 2>/dev/null)" ]; then echo "make-secrets.sh: $OUT exists and is not empty: choose a new --out folder" >&2; exit 2; fi
command -v openssl >/dev/null || { echo "make-secrets.sh: needs openssl" >&2; exit 2; }

SERVICES="ppo-coordinator policy reward-model reference-model pretrain-mix labeling"
umask 077
mkdir -p "$OUT"
cd "$OUT"

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$1" 2>/dev/null; }
b64() { base64 < "$1" | tr -d '\n'; }

# The CA that signs every certificate; the services trust it as servers and as clients (mTLS).
key ca.key
openssl req -x509 -new -key ca.key -out ca.crt -days "$DAYS" -subj "/CN=rlhf-ca/O=rlhf" 2>/dev/null

# sign <name> <subjectAltName>
sign() {
  key "$1.key"
  openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$1/O=rlhf" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature\nbasicConstraints=CA:FALSE\n' "$2" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days "$DAYS" -extfile "$1.ext" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

for s in $SERVICES; do
  # The names its callers dial (the Service, with and without the namespace) and the address its
  # in-pod health probe and its own tooling use.
  sign "$s" "DNS:$s,DNS:$s.$NAMESPACE,DNS:$s.$NAMESPACE.svc,DNS:$s.$NAMESPACE.svc.cluster.local,DNS:localhost,IP:127.0.0.1"
done
sign cli "DNS:rlhf-cli"

# One token per role: 32 random bytes, base64url (43 characters).
for role in service operator viewer; do
  openssl rand 32 | base64 | tr '+/' '-_' | tr -d '=\n' > "token-$role"
done

{
  for s in $SERVICES; do
    cat <<EOF
apiVersion: v1
kind: Secret
metadata:
  name: rlhf-tls-$s
  namespace: $NAMESPACE
  labels:
    app.kubernetes.io/part-of: rlhf
type: kubernetes.io/tls
data:
  tls.crt: $(b64 "$s.crt")
  tls.key: $(b64 "$s.key")
  ca.crt: $(b64 ca.crt)
---
EOF
  done
  cat <<EOF
apiVersion: v1
kind: Secret
metadata:
  name: rlhf-tokens
  namespace: $NAMESPACE
  labels:
    app.kubernetes.io/part-of: rlhf
type: Opaque
data:
  service: $(b64 token-service)
  operator: $(b64 token-operator)
  viewer: $(b64 token-viewer)
EOF
} > secrets.yaml

echo "wrote $(pwd): secrets.yaml (apply it: kubectl apply -f $OUT/secrets.yaml), ca.crt, cli.crt/cli.key and token-{service,operator,viewer} for clients"
echo "keep ca.key safe (or delete it): it signs certificates every service trusts"
