#!/usr/bin/env bash
# The control plane: kubeadm init (once), kubectl for root and vagrant, Calico, the grader's read-only identity.
set -euo pipefail
# shellcheck source=provision/lib.sh
. "${CKS_SRC:-/vagrant}/provision/lib.sh"

if [[ ! -f /etc/kubernetes/admin.conf ]]; then
  log "kubeadm init (Kubernetes ${K8S_VERSION})"
  kubeadm init --kubernetes-version "v${K8S_VERSION}" --node-name controlplane \
    --apiserver-advertise-address "${CONTROLPLANE_IP}" --pod-network-cidr "${POD_CIDR}"
fi
export KUBECONFIG=/etc/kubernetes/admin.conf

# kubeadm's own kube-apiserver manifest, kept once: `cks reset` of an audit lab restores exactly this, whatever
# an earlier lab changed (labs share one cluster).
PRISTINE=/etc/kubernetes/cks-pristine/kube-apiserver.yaml
if [[ ! -f "$PRISTINE" ]]; then
  install -D -m 0600 /etc/kubernetes/manifests/kube-apiserver.yaml "$PRISTINE"
  log "kept kubeadm's kube-apiserver manifest at $PRISTINE"
fi

# With no workers the control plane runs the lab workloads: drop its NoSchedule taint (kubeadm's guide,
# "Control plane node isolation"). With workers it stays; labs that Falco must watch tolerate it.
if [[ "${CKS_WORKERS:-1}" == 0 ]] \
  && kubectl get node controlplane -o jsonpath='{.spec.taints[*].key}' | grep -qw node-role.kubernetes.io/control-plane; then
  kubectl taint nodes controlplane node-role.kubernetes.io/control-plane:NoSchedule-
fi

for home in /root /home/vagrant; do
  if [[ -d "$home" ]] && ! cmp -s /etc/kubernetes/admin.conf "$home/.kube/config"; then
    install -D -m 0600 /etc/kubernetes/admin.conf "$home/.kube/config"
    chown -R "$(stat -c %U "$home"):$(stat -c %G "$home")" "$home/.kube"
    log "kubectl configured for $(stat -c %U "$home")"
  fi
done
grep -q 'kubectl completion bash' /home/vagrant/.bashrc \
  || printf 'source <(kubectl completion bash)\nalias k=kubectl\ncomplete -o default -F __start_kubectl k\n' >>/home/vagrant/.bashrc

# Calico, pinned; the pool is the kubeadm pod CIDR, away from the host-only network.
if ! kubectl -n kube-system get daemonset calico-node >/dev/null 2>&1; then
  log "installing Calico ${CALICO_VERSION}"
  curl -fsSL --retry 3 "https://raw.githubusercontent.com/projectcalico/calico/${CALICO_VERSION}/manifests/calico.yaml" \
    | sed -e 's|# - name: CALICO_IPV4POOL_CIDR|- name: CALICO_IPV4POOL_CIDR|' \
          -e "s|#   value: \"192.168.0.0/16\"|  value: \"${POD_CIDR}\"|" \
    | kubectl apply -f -
fi
want="can-reach=${CONTROLPLANE_IP}"
have="$(kubectl -n kube-system get daemonset calico-node \
  -o jsonpath='{.spec.template.spec.containers[0].env[?(@.name=="IP_AUTODETECTION_METHOD")].value}')"
if [[ "$have" != "$want" ]]; then
  kubectl -n kube-system set env daemonset/calico-node "IP_AUTODETECTION_METHOD=${want}"
fi

# The grader's read-only identity (deploy/rbac.yaml) as a root-only kubeconfig the collector prefers.
kubectl apply --server-side --field-manager cks-provision -f "${CKS_SRC}/deploy/rbac.yaml" >/dev/null
for _ in $(seq 1 30); do
  token="$(kubectl -n cks-system get secret cks-grader-token -o jsonpath='{.data.token}' 2>/dev/null | base64 -d)"
  [[ -n "$token" ]] && break
  sleep 2
done
[[ -n "${token:-}" ]] || { echo "the cks-grader token was not issued" >&2; exit 1; }
ca="$(kubectl -n cks-system get secret cks-grader-token -o jsonpath='{.data.ca\.crt}')"
cat <<KUBECONFIG | write_if_changed /etc/cks/grader.kubeconfig 0600 || true
apiVersion: v1
kind: Config
clusters:
- name: cks
  cluster: {server: "https://${CONTROLPLANE_IP}:6443", certificate-authority-data: "${ca}"}
users:
- name: cks-grader
  user: {token: "${token}"}
contexts:
- name: cks-grader
  context: {cluster: cks, user: cks-grader}
current-context: cks-grader
KUBECONFIG
