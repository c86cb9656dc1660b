#!/usr/bin/env bash
# A worker: join the cluster once.
set -euo pipefail
# shellcheck source=provision/lib.sh
. "${CKS_SRC:-/vagrant}/provision/lib.sh"

if [[ ! -f /etc/kubernetes/kubelet.conf ]]; then
  log "joining $(hostname) to ${CONTROLPLANE_IP}"
  for _ in $(seq 1 60); do
    curl -ksf "https://${CONTROLPLANE_IP}:6443/readyz" >/dev/null && break
    sleep 5
  done
  # Practice cluster on a host-only network: trust on first use instead of shipping the CA hash around.
  kubeadm join "${CONTROLPLANE_IP}:6443" --token "${KUBEADM_TOKEN}" \
    --discovery-token-unsafe-skip-ca-verification --node-name "$(hostname)"
fi
