#!/usr/bin/env bash
# Every node: kernel settings, containerd, the pinned kubelet/kubeadm/kubectl, crictl, the audit folders.
# Usage: common.sh NODE_NAME
set -euo pipefail
# shellcheck source=provision/lib.sh
. "${CKS_SRC:-/vagrant}/provision/lib.sh"

NODE="${1:?usage: common.sh NODE_NAME}"
IP="$(node_ip "$NODE")"

if swapon --show | grep -q .; then swapoff -a; fi
if grep -Eq '^[^#].*\sswap\s' /etc/fstab; then sed -i -E 's/^([^#].*\sswap\s.*)$/# \1/' /etc/fstab; fi

printf 'overlay\nbr_netfilter\n' | write_if_changed /etc/modules-load.d/k8s.conf 0644 || true
modprobe overlay
modprobe br_netfilter
if printf 'net.bridge.bridge-nf-call-iptables = 1\nnet.bridge.bridge-nf-call-ip6tables = 1\nnet.ipv4.ip_forward = 1\n' \
  | write_if_changed /etc/sysctl.d/k8s.conf 0644; then
  sysctl --system >/dev/null
fi

{
  printf '%s controlplane\n' "$CONTROLPLANE_IP"
  for i in 1 2 3; do printf '%s%d node%02d\n' "$NODE_IP_PREFIX" "$i" "$i"; done
} | write_if_changed /etc/cks-hosts 0644 || true
if ! grep -q '# cks-hosts' /etc/hosts; then
  { echo '# cks-hosts'; cat /etc/cks-hosts; } >>/etc/hosts
fi

if [[ ! -f /var/lib/cks/apt-updated ]]; then
  apt-get update -q
  install -D -m 0644 /dev/null /var/lib/cks/apt-updated
fi
apt_install apt-transport-https ca-certificates curl gpg jq

# containerd and runc from their upstream releases, pinned and checksum-verified (containerd's getting-started
# guide): Kubernetes 1.36+ needs containerd 2.x, newer than Ubuntu 24.04's package.
if ! /usr/local/bin/containerd --version 2>/dev/null | grep -q " v${CONTAINERD_VERSION} "; then
  log "installing containerd ${CONTAINERD_VERSION}"
  tmp="$(mktemp -d)"
  base="https://github.com/containerd/containerd/releases/download/v${CONTAINERD_VERSION}"
  tarball="containerd-${CONTAINERD_VERSION}-linux-$(arch).tar.gz"
  fetch_verified "${base}/${tarball}" "${base}/${tarball}.sha256sum" "${tmp}/${tarball}"
  tar -C /usr/local -xzf "${tmp}/${tarball}"
  curl -fsSL --retry 3 -o /etc/systemd/system/containerd.service \
    "https://raw.githubusercontent.com/containerd/containerd/v${CONTAINERD_VERSION}/containerd.service"
  rm -rf "$tmp"
  systemctl daemon-reload
  restart_containerd=1
fi
if ! /usr/local/sbin/runc --version 2>/dev/null | grep -q "^runc version ${RUNC_VERSION#v}$"; then
  log "installing runc ${RUNC_VERSION}"
  base="https://github.com/opencontainers/runc/releases/download/${RUNC_VERSION}"
  fetch_verified "${base}/runc.$(arch)" "${base}/runc.sha256sum" /tmp/runc
  install -m 0755 /tmp/runc /usr/local/sbin/runc
  rm -f /tmp/runc
  restart_containerd=1
fi
if ! grep -q 'SystemdCgroup = true' /etc/containerd/config.toml 2>/dev/null; then
  install -d /etc/containerd
  /usr/local/bin/containerd config default | sed 's/SystemdCgroup = false/SystemdCgroup = true/' >/etc/containerd/config.toml
  grep -q 'SystemdCgroup = true' /etc/containerd/config.toml \
    || { echo "containerd's default config has no SystemdCgroup setting to turn on" >&2; exit 1; }
  restart_containerd=1
fi
systemctl enable --now containerd >/dev/null
if [[ -n "${restart_containerd:-}" ]]; then systemctl restart containerd; fi

apt_repo kubernetes "https://pkgs.k8s.io/core:/stable:/${K8S_MINOR}/deb/Release.key" \
  "deb [signed-by=@KEYRING@] https://pkgs.k8s.io/core:/stable:/${K8S_MINOR}/deb/ /"
PKG="${K8S_VERSION}-${K8S_PKG_REV}"
apt_install "kubelet=${PKG}" "kubeadm=${PKG}" "kubectl=${PKG}"
apt-mark hold kubelet kubeadm kubectl >/dev/null

if printf 'KUBELET_EXTRA_ARGS=--node-ip=%s\n' "$IP" | write_if_changed /etc/default/kubelet 0644; then
  systemctl daemon-reload
  systemctl restart kubelet
fi
printf 'runtime-endpoint: unix:///run/containerd/containerd.sock\nimage-endpoint: unix:///run/containerd/containerd.sock\ntimeout: 10\n' \
  | write_if_changed /etc/crictl.yaml 0644 || true

# The folders the audit labs use: the policy (read by kube-apiserver) and its log (written by it).
install -d -m 0755 /etc/kubernetes/audit
install -d -m 0700 /var/log/kubernetes/audit
install -d -m 0755 /opt/course
