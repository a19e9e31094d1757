#!/usr/bin/env bash
# Installs, from Debian's packages, the servers and tools the tests and benchmarks run for real:
# Dovecot's POP3 server, openssl (the test Dovecot's certificate), PostgreSQL 15 (the binaries
# support/postgres.ts runs as private throw-away servers; the package's own "main" cluster is not
# used), systemd (only its systemd-analyze, for the deployment unit), the delivery targets
# (Dovecot's LMTP and IMAP servers, Postfix, procmail and maildrop), fetchmail (a bench
# baseline) and Chromium (the console's browser tests). None of them is started here or by the package: the tests start private instances on
# loopback. Idempotent; needs root.
# The test harness would install them on demand too, but parallel test files must not race for
# dpkg's lock, so CI and newcomers run this once first.
set -euo pipefail

need=()
# dovecot-pop3d, not just dovecot-core: its pop3 binary is what the tests run.
[ -x /usr/lib/dovecot/pop3 ] && [ -x /usr/sbin/dovecot ] || need+=(dovecot-pop3d)
command -v openssl >/dev/null || need+=(openssl)
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql)
# systemd-analyze checks the unit in docs/deploy/ (packages/service/test/deploy.test.ts).
command -v systemd-analyze >/dev/null || need+=(systemd)
# mpop is what `npm run bench` measures `popwire fetch` against (scenario f; skipped without it).
command -v mpop >/dev/null || need+=(mpop)
# Delivery destinations (packages/service/test/destinations): LMTP and IMAP APPEND into a private
# Dovecot, SMTP into a private Postfix, and the MDAs procmail and maildrop.
[ -x /usr/lib/dovecot/lmtp ] || need+=(dovecot-lmtpd)
[ -x /usr/lib/dovecot/imap ] || need+=(dovecot-imapd)
[ -x /usr/sbin/postfix ] || need+=(postfix)
command -v procmail >/dev/null || need+=(procmail)
command -v maildrop >/dev/null || need+=(maildrop)
# popa3d (bench scenario g) is not installed here: it conflicts with dovecot-pop3d (both provide
# pop3-server), so bench/no-pipelining.ts unpacks its package privately instead.
# fetchmail is the baseline of the LMTP delivery bench.
command -v fetchmail >/dev/null || need+=(fetchmail)
# Headless Chromium for the console's browser tests (driven by playwright-core, no download).
command -v chromium >/dev/null || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-system-deps: need root to install: ${need[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Postfix asks how to configure itself; the tests run their own private configuration.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt-get install -y -qq "${need[@]}" || { apt-get update -qq && apt-get install -y -qq "${need[@]}"; }
