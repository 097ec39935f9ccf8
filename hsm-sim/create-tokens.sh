#!/usr/bin/env bash
# Creates SoftHSMv2 tokens for sceau under DIR:
#   DIR/softhsm2.conf          the configuration to export as SOFTHSM2_CONF
#   DIR/tokens/                the token store
#   DIR/pins/LABEL.pin         each token's user PIN (mode 0600)
#   DIR/pins/LABEL.so-pin      each token's security officer PIN (mode 0600)
# Tokens that already exist are left alone, so the script can run again.
#
# usage: hsm-sim/create-tokens.sh DIR [LABEL...]
#   default labels: sceau-root sceau-issuing sceau-services sceau-seal
# PINs are random unless SCEAU_DEV_PIN is set. This is for development and tests:
# a production HSM's tokens and PINs are created by its own ceremony.
set -euo pipefail

if [ $# -lt 1 ]; then
  echo "usage: $0 DIR [LABEL...]" >&2
  exit 2
fi
if ! command -v softhsm2-util >/dev/null 2>&1; then
  echo "$0: softhsm2-util not found: install the softhsm2 package (make deps)" >&2
  exit 1
fi

here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1/tokens" "$1/pins"
dir=$(cd "$1" && pwd)
chmod 700 "$dir/pins"
shift
labels=("$@")
if [ ${#labels[@]} -eq 0 ]; then
  labels=(sceau-root sceau-issuing sceau-services sceau-seal)
fi

sed "s|@TOKENDIR@|$dir/tokens|" "$here/softhsm2.conf.template" >"$dir/softhsm2.conf"
export SOFTHSM2_CONF="$dir/softhsm2.conf"

random_pin() {
  od -An -N12 -tx1 /dev/urandom | tr -d ' \n'
}

existing=$(softhsm2-util --show-slots 2>/dev/null | sed -n 's/^ *Label: *//p' | sed 's/ *$//')
for label in "${labels[@]}"; do
  if printf '%s\n' "$existing" | grep -qxF "$label"; then
    continue
  fi
  pin=${SCEAU_DEV_PIN:-$(random_pin)}
  so_pin=$(random_pin)
  (
    umask 077
    printf '%s\n' "$pin" >"$dir/pins/$label.pin"
    printf '%s\n' "$so_pin" >"$dir/pins/$label.so-pin"
  )
  softhsm2-util --init-token --free --label "$label" --pin "$pin" --so-pin "$so_pin" >/dev/null
done

echo "SOFTHSM2_CONF=$dir/softhsm2.conf"
