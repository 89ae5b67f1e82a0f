#!/usr/bin/env python3
"""Rewrites an example production configuration of deploy/config/ for the local deployment.

    render_config.py TEMPLATE OUT --root DIR --listen ADDR [--metrics ADDR]
        [--controller HOST:PORT] [--db-node N=HOST:PORT ...] [--set KEY=TOML_VALUE ...]

As crates/cli/tests/deploy_configs.rs does for its test host: files under /etc/blindledger,
/run/secrets and /var/lib/blindledger move under DIR (DIR/etc/blindledger/...), the
listeners go to the given loopback addresses, `https://controller:8181/` becomes the
running controller, the Galera hosts db1..db3 of `database_url` become the local nodes (the
user stays; the password comes from the environment, as in production), and `--set` adds or
replaces a key (`instance_id="ledger-1"`). Every other value stays as written.

Python 3.11+ (tomllib); no other dependency. TOML is written by the small writer below.
"""

import argparse
import json
import re
import sys
import tomllib

PREFIXES = ("/etc/blindledger/", "/run/secrets/", "/var/lib/blindledger/")
CONTROLLER = "https://controller:8181/"
BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def rewrite(table, fn):
    """Applies fn to every string of table, recursively (lists included)."""
    for key, value in table.items():
        if isinstance(value, str):
            table[key] = fn(value)
        elif isinstance(value, dict):
            rewrite(value, fn)
        elif isinstance(value, list):
            table[key] = [fn(v) if isinstance(v, str) else v for v in value]


def lift_misplaced(config, keys, template):
    """Moves top-level keys that a file wrote after a [table] header (so TOML put them in
    that table) back to the top level, with a warning; fails on keys the service lacks."""
    for name, table in list(config.items()):
        if not isinstance(table, dict):
            continue
        for k in [k for k, v in table.items() if k in keys and not isinstance(v, dict)]:
            if k in config:
                sys.exit(f"{template}: {k} is set at the top level and in [{name}]")
            print(f"render_config: warning: {template}: {k} is inside [{name}] (it follows that "
                  f"table's header); using it as the top-level key {k}", file=sys.stderr)
            config[k] = table.pop(k)
    unknown = sorted(k for k in config if k not in keys)
    if unknown:
        sys.exit(f"{template}: keys the service does not know: {', '.join(unknown)}")


def key(k):
    return k if BARE_KEY.match(k) else json.dumps(k)


def scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        # A JSON string is a valid TOML basic string (\uXXXX escapes included).
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(scalar(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} values: {v!r}")


def dump(table, path=(), out=None):
    """TOML text for table: its plain values, then each sub-table under its header."""
    out = [] if out is None else out
    plain = {k: v for k, v in table.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in table.items() if isinstance(v, dict)}
    if path and (plain or not tables):
        out.append("")
        out.append("[" + ".".join(key(p) for p in path) + "]")
    for k, v in plain.items():
        out.append(f"{key(k)} = {scalar(v)}")
    for k, v in tables.items():
        dump(v, path + (k,), out)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("template")
    p.add_argument("out")
    p.add_argument("--root", required=True)
    p.add_argument("--listen", required=True)
    p.add_argument("--metrics")
    p.add_argument("--controller")
    p.add_argument("--db-node", action="append", default=[], metavar="N=HOST:PORT")
    p.add_argument("--set", action="append", default=[], metavar="KEY=TOML_VALUE")
    p.add_argument("--keys", help="the service's configuration keys, comma-separated "
                   "(as its --help lists them): checked, and used to lift misplaced keys")
    args = p.parse_args()

    with open(args.template, "rb") as f:
        config = tomllib.load(f)
    root = args.root.rstrip("/")

    def paths(value):
        for prefix in PREFIXES:
            if value.startswith(prefix):
                return root + value
        if value.startswith(CONTROLLER):
            if not args.controller:
                sys.exit(f"{args.template}: names the controller but no --controller was given")
            return f"https://{args.controller}/" + value[len(CONTROLLER):]
        return value

    rewrite(config, paths)
    if args.keys:
        lift_misplaced(config, {k.strip() for k in args.keys.split(",") if k.strip()}, args.template)

    config["listen_addr"] = args.listen
    if "metrics_addr" in config or args.metrics:
        if not args.metrics:
            sys.exit(f"{args.template}: has metrics_addr but no --metrics was given")
        config["metrics_addr"] = args.metrics

    nodes = dict(n.split("=", 1) for n in args.db_node)
    url = config.get("database_url")
    if url is not None:
        def node(match):
            n = match.group(1)
            if n not in nodes:
                sys.exit(f"{args.template}: database_url names db{n}, which has no --db-node")
            return nodes[n]

        new = re.sub(r"\bdb([0-9]+):3306\b", node, url)
        if new == url:
            sys.exit(f"{args.template}: database_url {url!r} names no dbN:3306 host")
        config["database_url"] = new

    for item in args.set:
        k, _, v = item.partition("=")
        config[k] = tomllib.loads(f"v = {v}")["v"]

    header = [
        f"# Generated by deploy/local/up.sh from {args.template}; edits are lost on the next up.",
        "# Paths, listeners, the controller's address and the database hosts are rewritten for",
        "# this host; the database password comes from the environment.",
    ]
    text = "\n".join(header + dump(config)) + "\n"
    tomllib.loads(text)  # what was written reads back
    with open(args.out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
