#!/usr/bin/env bash
# Shared helpers for the provisioning scripts; sourced, never run. Every step checks before it changes
# anything, so a second `vagrant provision` changes nothing.
# shellcheck shell=bash
set -euo pipefail

CKS_SRC="${CKS_SRC:-/vagrant}"
# shellcheck source=provision/versions.env
. "${CKS_SRC}/provision/versions.env"

export DEBIAN_FRONTEND=noninteractive

log() { printf '[cks] %s\n' "$*"; }

# apt_install PKG[=VERSION]...: install only what is missing or at another version.
apt_install() {
  local missing=() pkg name want have
  for pkg in "$@"; do
    name="${pkg%%=*}"
    have="$(dpkg-query -W -f='${Status} ${Version}' "$name" 2>/dev/null || true)"
    if [[ "$have" != "install ok installed"* ]]; then
      missing+=("$pkg")
    elif [[ "$pkg" == *=* ]]; then
      want="${pkg#*=}"
      [[ "${have##* }" == "$want" ]] || missing+=("$pkg")
    fi
  done
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get install -y -q --allow-downgrades --allow-change-held-packages "${missing[@]}"
  fi
}

# write_if_changed PATH MODE < content: returns 0 when the file changed, 1 when it was already so.
write_if_changed() {
  local tmp
  tmp="$(mktemp)"
  cat >"$tmp"
  if [[ -f "$1" ]] && cmp -s "$tmp" "$1"; then
    rm -f "$tmp"
    return 1
  fi
  install -D -m "$2" "$tmp" "$1"
  rm -f "$tmp"
  log "wrote $1"
  return 0
}

# apt_repo NAME KEY_URL LINE: add a signed apt source once, then refresh the index.
apt_repo() {
  local name="$1" key_url="$2" line="$3" keyring="/etc/apt/keyrings/$1.gpg"
  install -d -m 0755 /etc/apt/keyrings
  if [[ ! -s "$keyring" ]]; then
    curl -fsSL --retry 3 "$key_url" | gpg --dearmor -o "$keyring"
  fi
  if printf '%s\n' "${line//@KEYRING@/$keyring}" | write_if_changed "/etc/apt/sources.list.d/$name.list" 0644; then
    apt-get update -q
  fi
}

# arch: the Debian name of this machine's architecture (amd64, arm64), as upstream release assets use it.
arch() { dpkg --print-architecture; }

# fetch_verified URL SHA256_URL DEST: download a release asset and check it against the line for its file
# name in the published checksum file (`<sha256>  <name>`, as containerd and runc publish them).
fetch_verified() {
  local url="$1" sum_url="$2" dest="$3" name want have
  name="${url##*/}"
  curl -fsSL --retry 3 -o "$dest" "$url"
  want="$(curl -fsSL --retry 3 "$sum_url" | awk -v n="$name" '$2 == n || $2 == "*" n {print $1; exit}')"
  have="$(sha256sum "$dest" | awk '{print $1}')"
  if [[ -z "$want" || "$want" != "$have" ]]; then
    echo "checksum mismatch for $url (published ${want:-none}, got $have)" >&2
    rm -f "$dest"
    return 1
  fi
}

node_ip() {
  case "$1" in
    controlplane) printf '%s\n' "$CONTROLPLANE_IP" ;;
    node*) printf '%s%d\n' "$NODE_IP_PREFIX" "$((10#${1#node}))" ;;
    *) echo "unknown node $1" >&2; return 1 ;;
  esac
}
