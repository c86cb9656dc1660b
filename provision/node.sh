#!/usr/bin/env bash
# A worker: join the cluster once, with the join command the Vagrantfile's trigger fetched from controlplane
# (`kubeadm token create --print-join-command`: a token valid one hour and the CA's public-key hash, so the
# worker verifies the control plane it joins).
set -euo pipefail
# shellcheck source=provision/lib.sh
. "${CKS_SRC:-/vagrant}/provision/lib.sh"

JOIN="${CKS_SRC}/provision/.join/join.sh"
if [[ ! -f /etc/kubernetes/kubelet.conf ]]; then
  if [[ ! -s "$JOIN" ]]; then
    echo "no join command at $JOIN: run 'vagrant up $(hostname)' from the host (its trigger fetches one)" >&2
    exit 1
  fi
  if ! grep -q -- '--discovery-token-ca-cert-hash sha256:' "$JOIN"; then
    echo "$JOIN has no CA hash; refusing to join without verifying the control plane" >&2
    exit 1
  fi
  log "joining $(hostname) to ${CONTROLPLANE_IP}"
  for _ in $(seq 1 60); do
    curl -ksf "https://${CONTROLPLANE_IP}:6443/readyz" >/dev/null && break
    sleep 5
  done
  bash "$JOIN"
fi
