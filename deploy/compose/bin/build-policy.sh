#!/bin/sh
# Tests, builds and signs the shipped policy into the bundle the controller serves first
# (its initial_policy_bundle), as CI does for every policy change.
#
#   POLICY_DIR       the Rego policy (the image ships it in /usr/share/blindledger/policies)
#   POLICY_BUNDLE    the signed bundle to write
#   POLICY_REVISION  the revision recorded in its manifest
#   SIGNING_KEY      CI's Ed25519 private key (PKCS#8 PEM)
#   SIGNING_KID      its key id, as the services' bundle_keys name it
set -eu

: "${POLICY_DIR:?}" "${POLICY_BUNDLE:?}" "${POLICY_REVISION:?}" "${SIGNING_KEY:?}" "${SIGNING_KID:?}"

blindledger policy test "$POLICY_DIR"
# Written beside the target, then renamed: the controller never reads half a bundle.
blindledger policy build "$POLICY_DIR" --revision "$POLICY_REVISION" --out "$POLICY_BUNDLE.tmp"
blindledger policy sign "$POLICY_BUNDLE.tmp" --key "$SIGNING_KEY" --kid "$SIGNING_KID"
mv -f "$POLICY_BUNDLE.tmp" "$POLICY_BUNDLE"
echo "build-policy: $POLICY_BUNDLE (revision $POLICY_REVISION, signed by $SIGNING_KID)"
