#!/usr/bin/env bash
# Generates the compose stack's secrets into deploy/compose/secrets/ (git-ignored):
# database and Grafana passwords, Ed25519 keys (token issuer, CI bundle signing,
# controller risk-bundle signing, officer, audit checkpoints), a private CA with one
# certificate per workload (ledger, controller, audit: each valid for TLS server and
# client authentication, since every service serves TLS with client certificates and the
# ledger and the audit service present theirs to the controller's bundle server), an
# operator's client certificate (PEM, and PKCS#12 for a browser), and two tokens (the
# services' bundle_reader token, an administrator token for the CLI).
#
#   deploy/compose/gen-secrets.sh           # creates what is missing, keeps what exists
#   deploy/compose/gen-secrets.sh --force   # replaces everything (rotation: restart the stack)
#   deploy/compose/gen-secrets.sh --list    # prints the files it writes, one per line
#
# A kept certificate is issued again when it no longer chains to ca.crt, lacks a usage or
# a name this script gives it now, or expires within 30 days.
#
# Needs openssl, and the blindledger CLI for the tokens: $BLINDLEDGER_CLI, else
# `blindledger` on PATH, else target/release/blindledger, else the image
# ($BLINDLEDGER_IMAGE, default blindledger:dev: `docker compose build` first).
#
# The files are mode 0644 in a 0700 directory: Compose bind-mounts secret files as they
# are, and the containers read them as uid 10001 (services) or mysql (databases); the
# directory keeps other users of this host out.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
OUT="$HERE/secrets"

PASSWORDS=(mariadb-root-password db-password-ledger db-password-controller db-password-audit grafana-admin-password)
ED25519_KEYS=(token-issuer ci-bundle controller-risk officer-1 audit-checkpoint)
# One certificate per workload: its compose service names (the ledger's two instances
# share one), localhost and 127.0.0.1 (the ports published on this host).
WORKLOADS=(ledger controller audit)
workload_names() {
  case "$1" in
    ledger) echo "ledger-1 ledger-2" ;;
    *) echo "$1" ;;
  esac
}
TLS_FILES=(ca.crt ca.key)
for workload in "${WORKLOADS[@]}"; do TLS_FILES+=("$workload-tls.crt" "$workload-tls.key"); done
TLS_FILES+=(client.crt client.key client.p12 client-p12-password)
TOKENS=(bundle-token admin-token)

files() {
  local name
  printf '%s\n' "${PASSWORDS[@]}"
  for name in "${ED25519_KEYS[@]}"; do printf '%s.key\n%s.pub\n' "$name" "$name"; done
  printf '%s\n' "${TLS_FILES[@]}" "${TOKENS[@]}"
}

FORCE=""
case "${1:-}" in
  --list)
    files
    exit 0
    ;;
  --force) FORCE=1 ;;
  "") ;;
  -h | --help)
    sed -n '2,26p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "usage: $0 [--force|--list]" >&2
    exit 2
    ;;
esac

log() { printf 'gen-secrets: %s\n' "$*" >&2; }
command -v openssl >/dev/null || {
  log "openssl is required (apt-get install openssl)"
  exit 1
}

install -d -m 0700 "$OUT"
umask 022

# Whether $1 (a file under $OUT) must be written.
wanted() { [[ -n $FORCE || ! -s $OUT/$1 ]]; }

for name in "${PASSWORDS[@]}"; do
  if wanted "$name"; then
    # Hex: safe in a database URL and in a quoted SQL literal without escaping; no
    # trailing newline, as every reader takes the whole file.
    openssl rand -hex 24 | tr -d '\n' >"$OUT/$name"
    log "wrote $name"
  fi
done

for name in "${ED25519_KEYS[@]}"; do
  if wanted "$name.key"; then
    openssl genpkey -algorithm ed25519 -out "$OUT/$name.key"
    openssl pkey -in "$OUT/$name.key" -pubout -out "$OUT/$name.pub"
    log "wrote $name.key, $name.pub"
    # Tokens signed by an earlier issuer key would no longer verify.
    if [[ $name == token-issuer ]]; then REISSUE_TOKENS=1; fi
  fi
done

# TLS: a private CA (ECDSA P-256), one certificate per workload (every name a client may
# use to reach it; serverAuth for its own port, clientAuth for the controller's bundle
# server, which requires client certificates), and a client certificate for an operator's
# CLI and browser (every service requires one: tls_client_ca).
if wanted ca.crt || wanted ca.key; then
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$OUT/ca.key" -out "$OUT/ca.crt" -days 825 -subj "/CN=BlindLedger compose CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  log "wrote ca.crt, ca.key"
  FORCE_LEAVES=1
fi

# Issues $1.crt/$1.key for subject CN $2 with the extensions in $3.
issue() {
  local name="$1" cn="$2" extensions="$3" csr ext
  csr="$(mktemp)"
  ext="$(mktemp)"
  printf '%s\n' "$extensions" >"$ext"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$OUT/$name.key" -out "$csr" -subj "/CN=$cn" 2>/dev/null
  openssl x509 -req -in "$csr" -CA "$OUT/ca.crt" -CAkey "$OUT/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 397 -extfile "$ext" -out "$OUT/$name.crt" 2>/dev/null
  rm -f "$csr" "$ext"
  log "wrote $name.crt, $name.key"
}

# Whether the certificate $1.crt (and its key) must be issued (again): missing, --force or
# a new CA, or it does not verify for the purposes $2 (comma-separated: sslserver,
# sslclient) against ca.crt, lacks one of the host names $3, or expires within 30 days.
reissue() {
  local name="$1" purposes="$2" hosts="$3" purpose host
  [[ -n ${FORCE_LEAVES:-} ]] && return 0
  wanted "$name.crt" && return 0
  wanted "$name.key" && return 0
  openssl x509 -in "$OUT/$name.crt" -noout -checkend 2592000 >/dev/null 2>&1 || return 0
  for purpose in ${purposes//,/ }; do
    openssl verify -CAfile "$OUT/ca.crt" -purpose "$purpose" "$OUT/$name.crt" >/dev/null 2>&1 || return 0
  done
  for host in $hosts; do
    if [[ $host =~ ^[0-9.]+$ ]]; then
      openssl x509 -in "$OUT/$name.crt" -noout -checkip "$host" 2>/dev/null | grep -q ' does match' || return 0
    else
      openssl x509 -in "$OUT/$name.crt" -noout -checkhost "$host" 2>/dev/null | grep -q ' does match' || return 0
    fi
  done
  return 1
}

for workload in "${WORKLOADS[@]}"; do
  hosts="$(workload_names "$workload") localhost 127.0.0.1"
  if reissue "$workload-tls" sslserver,sslclient "$hosts"; then
    san=""
    for host in $(workload_names "$workload") localhost; do san+="DNS:$host,"; done
    issue "$workload-tls" "$workload" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=${san}IP:127.0.0.1,URI:spiffe://blindledger.compose/$workload"
  fi
done
if reissue client sslclient ""; then
  issue client operator "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
subjectAltName=URI:spiffe://blindledger.compose/operator"
  REEXPORT_P12=1
fi
# The operator's certificate for a browser (the audit dashboard requires it), with a
# password: some key stores refuse a PKCS#12 file without one.
if [[ -n ${REEXPORT_P12:-} ]] || wanted client.p12 || wanted client-p12-password; then
  openssl rand -hex 16 | tr -d '\n' >"$OUT/client-p12-password"
  openssl pkcs12 -export -in "$OUT/client.crt" -inkey "$OUT/client.key" -certfile "$OUT/ca.crt" \
    -name "BlindLedger compose operator" -passout "file:$OUT/client-p12-password" -out "$OUT/client.p12"
  log "wrote client.p12 (password in client-p12-password)"
fi

# Tokens need the CLI (it signs them as the services verify them).
cli() {
  if [[ -n ${BLINDLEDGER_CLI:-} ]]; then
    "$BLINDLEDGER_CLI" "$@"
  elif command -v blindledger >/dev/null 2>&1; then
    blindledger "$@"
  elif [[ -x $REPO_ROOT/target/release/blindledger ]]; then
    "$REPO_ROOT/target/release/blindledger" "$@"
  elif command -v docker >/dev/null 2>&1; then
    # Secrets are mounted read-only; the CLI's arguments name them under /secrets.
    local args=("${@//"$OUT"//secrets}")
    docker run --rm --network none --read-only -v "$OUT:/secrets:ro" \
      "${BLINDLEDGER_IMAGE:-blindledger:dev}" blindledger "${args[@]}"
  else
    log "no blindledger CLI: set BLINDLEDGER_CLI, build it (cargo build --release -p blindledger-cli) or the image"
    return 1
  fi
}

# Readable by the containers (and by the CLI when it runs from the image).
chmod 0644 "$OUT"/*

if [[ -n ${REISSUE_TOKENS:-} ]] || wanted bundle-token; then
  cli token issue --sub compose-services --role bundle_reader --audience controller \
    --ttl 8760h --key "$OUT/token-issuer.key" --kid issuer >"$OUT/bundle-token.tmp"
  mv -f "$OUT/bundle-token.tmp" "$OUT/bundle-token"
  log "wrote bundle-token (bundle_reader, audience controller, valid one year)"
fi
if [[ -n ${REISSUE_TOKENS:-} ]] || wanted admin-token; then
  cli token issue --sub compose-admin --role admin --audience all \
    --ttl 720h --key "$OUT/token-issuer.key" --kid issuer >"$OUT/admin-token.tmp"
  mv -f "$OUT/admin-token.tmp" "$OUT/admin-token"
  log "wrote admin-token (admin, every audience, valid 30 days)"
fi

chmod 0644 "$OUT"/*
log "secrets in $OUT"
