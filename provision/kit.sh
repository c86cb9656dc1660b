#!/usr/bin/env bash
# The kit inside controlplane: `grade lab3` and `cks ...` for every user (sudo is used for root-only files).
set -euo pipefail
# shellcheck source=provision/lib.sh
. "${CKS_SRC:-/vagrant}/provision/lib.sh"

apt_install python3-venv python3-pip
if [[ ! -x /opt/cks/venv/bin/python ]]; then python3 -m venv /opt/cks/venv; fi

# Reinstall only when the kit's source changed.
sum="$(cd "${CKS_SRC}" && find pyproject.toml README.md grader labs -type f ! -name '*.pyc' -print0 \
  | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)"
if [[ "$(cat /opt/cks/installed.sha256 2>/dev/null || true)" != "$sum" ]]; then
  log "installing the kit from ${CKS_SRC}"
  rm -rf /opt/cks/src
  cp -r "${CKS_SRC}" /opt/cks/src
  /opt/cks/venv/bin/pip install -q "/opt/cks/src[live]"
  printf '%s\n' "$sum" >/opt/cks/installed.sha256
fi
for cmd in cks grade; do
  if [[ "$(readlink /usr/local/bin/$cmd || true)" != "/opt/cks/venv/bin/$cmd" ]]; then
    ln -sfn "/opt/cks/venv/bin/$cmd" "/usr/local/bin/$cmd"
  fi
done
