#!/usr/bin/env bash
# Installs, from Debian's packages, the servers and tools the tests and benchmarks run for real:
# Dovecot's POP3 server, openssl (the test Dovecot's certificate), PostgreSQL 15 (the binaries
# support/postgres.ts runs as private throw-away servers; the package's own "main" cluster is not
# used) and systemd (only its systemd-analyze, for the deployment unit). Idempotent; needs root.
# The test harness would install them on demand too, but parallel test files must not race for
# dpkg's lock, so CI and newcomers run this once first.
set -euo pipefail

need=()
[ -x /usr/sbin/dovecot ] || need+=(dovecot-pop3d)
command -v openssl >/dev/null || need+=(openssl)
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql)
# systemd-analyze checks the unit in docs/deploy/ (packages/service/test/deploy.test.ts).
command -v systemd-analyze >/dev/null || need+=(systemd)
# mpop is what `npm run bench` measures `popwire fetch` against (scenario f; skipped without it).
command -v mpop >/dev/null || need+=(mpop)
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-system-deps: need root to install: ${need[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq "${need[@]}" || { apt-get update -qq && apt-get install -y -qq "${need[@]}"; }
