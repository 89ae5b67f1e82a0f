#!/usr/bin/env bash
# Stops the local deployment: deploy/local/up.sh down (see deploy/local/README.md).
exec "$(dirname "${BASH_SOURCE[0]}")/up.sh" down "$@"
