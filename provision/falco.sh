#!/usr/bin/env bash
# Falco from its package repository, pinned, with the modern eBPF driver (no kernel module, no headers).
set -euo pipefail
# shellcheck source=provision/lib.sh
. "${CKS_SRC:-/vagrant}/provision/lib.sh"

apt_repo falcosecurity "https://falco.org/repo/falcosecurity-packages.asc" \
  "deb [signed-by=@KEYRING@] https://download.falco.org/packages/deb stable main"
# Rules must not change under the learner: FALCOCTL_ENABLED=no installs Falco without falcoctl's automatic
# rules updates (Falco's install guide), so /etc/falco/falco_rules.yaml stays the one the package bundles.
export FALCO_FRONTEND=noninteractive FALCO_DRIVER_CHOICE=modern_ebpf FALCOCTL_ENABLED=no
apt_install dialog "falco=${FALCO_VERSION}"
apt-mark hold falco >/dev/null
for unit in falco-kmod.service falco-bpf.service; do
  if systemctl is-active --quiet "$unit"; then systemctl disable --now "$unit"; fi
done
# Labs grade a learner's rule by its own alert; Falco's default `rule_matching: first` would let an
# earlier default rule that matches the same event (e.g. "Read sensitive file untrusted") hide it.
install -d -m 0755 /etc/falco/config.d
if [[ "$(cat /etc/falco/config.d/cks.yaml 2>/dev/null || true)" != "rule_matching: all" ]]; then
  printf '%s\n' "rule_matching: all" > /etc/falco/config.d/cks.yaml
  if systemctl is-active --quiet falco-modern-bpf.service; then systemctl restart falco-modern-bpf.service; fi
fi
if ! systemctl is-enabled --quiet falco-modern-bpf.service; then systemctl enable falco-modern-bpf.service; fi
if ! systemctl is-active --quiet falco-modern-bpf.service; then systemctl start falco-modern-bpf.service; fi
