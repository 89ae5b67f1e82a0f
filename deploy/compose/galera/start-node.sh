#!/bin/bash
# Starts one Galera node through the mariadb image's own entrypoint (which initializes
# the data directory on first start and drops to the mysql user).
#
#   GALERA_NODE_NAME  this node's wsrep_node_name (db1, db2, db3)
#   GALERA_BOOTSTRAP  1 on the one node that may start a new cluster (db1)
#
# The bootstrap node starts a new cluster (--wsrep-new-cluster) only when it has no
# Galera state yet (first start), or when its grastate.dat says safe_to_bootstrap: 1,
# which Galera writes on the last node to leave a cluster shut down cleanly; Compose
# stops db1 last, as db2 and db3 depend on it. In every other case the node joins the
# nodes of wsrep_cluster_address. After a crash of every node, recover by hand as in
# deploy/galera/README.md ("Recovery after a full shutdown"): never bootstrap two nodes.
set -euo pipefail

: "${GALERA_NODE_NAME:?GALERA_NODE_NAME is not set}"
state=/var/lib/mysql/grastate.dat
args=("$@" "--wsrep-node-name=$GALERA_NODE_NAME")

if [[ ${GALERA_BOOTSTRAP:-0} == 1 ]]; then
  if [[ ! -e $state ]]; then
    echo "start-node: $GALERA_NODE_NAME has no Galera state: starting a new cluster" >&2
    args+=(--wsrep-new-cluster)
  elif grep -Eq '^safe_to_bootstrap:[[:space:]]*1' "$state"; then
    echo "start-node: $GALERA_NODE_NAME left the cluster last: starting it again from here" >&2
    args+=(--wsrep-new-cluster)
  fi
fi

exec docker-entrypoint.sh "${args[@]}"
