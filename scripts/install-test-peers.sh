#!/usr/bin/env bash
# Installs the real peers the tests talk to, only where they are missing:
#   smtp-sink / smtp-source (Debian postfix, "No configuration"), spamassassin,
#   chromium (with a Japanese font), the Python DKIM verifier (dkimpy + PyNaCl for Ed25519),
#   an SMTP server that offers STARTTLS (aiosmtpd, with trustme for its certificate), a second
#   DKIM verifier (opendkim and opendkim-tools, run as `opendkim -t`), openssl and Python's
#   cryptography (they must read the keys `mailgate dkim keygen` writes), dnslib (the
#   local DNS server of the `dns --check` tests), standardwebhooks (the webhook receiver
#   verifies signatures with it), openapi-spec-validator and schemathesis (the API
#   contract tests), axe-core (npm, into
#   target/test-peers/) for the accessibility test, and PostgreSQL (Debian postgresql:
#   scripts/test.sh starts a throwaway cluster from its initdb for the store tests).
# Non-interactive, idempotent, and quick when everything is already present.
set -euo pipefail

need_apt=()
command -v smtp-sink >/dev/null 2>&1 || [ -x /usr/sbin/smtp-sink ] || need_apt+=(postfix)
command -v spamassassin >/dev/null 2>&1 || need_apt+=(spamassassin)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
# Japanese glyphs, so the browser test's screenshots of the ja pages are readable.
fc-list :lang=ja 2>/dev/null | grep -q . || need_apt+=(fonts-ipafont-gothic)
{ command -v opendkim >/dev/null 2>&1 || [ -x /usr/sbin/opendkim ]; } || need_apt+=(opendkim)
command -v opendkim-testkey >/dev/null 2>&1 || need_apt+=(opendkim-tools)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need_apt+=(postgresql)

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "install-test-peers: installing Debian packages: ${need_apt[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  # postfix asks how to configure itself: "No configuration" leaves it unconfigured and stopped.
  echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

PY="${PYTHON:-python3}"
if ! "$PY" -c 'import dkim, nacl, aiosmtpd, trustme, cryptography, dnslib' >/dev/null 2>&1; then
  echo "install-test-peers: installing Python modules dkimpy, PyNaCl, aiosmtpd, trustme, cryptography, dnslib for $PY"
  "$PY" -m pip install -q dkimpy pynacl aiosmtpd trustme cryptography dnslib
fi
if ! "$PY" -c 'import standardwebhooks, openapi_spec_validator, schemathesis' >/dev/null 2>&1; then
  echo "install-test-peers: installing Python modules standardwebhooks, openapi-spec-validator, schemathesis for $PY"
  "$PY" -m pip install -q "standardwebhooks==1.3.0" "openapi-spec-validator==0.9.0" "schemathesis==4.32.5"
fi

# axe-core, pinned, where tests/it/a11y.rs reads it (target/ is not in git).
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
AXE_VERSION="4.14.1"
AXE_DIR="$ROOT/target/test-peers"
if ! grep -qs "\"version\": \"$AXE_VERSION\"" "$AXE_DIR/node_modules/axe-core/package.json"; then
  echo "install-test-peers: installing axe-core $AXE_VERSION (npm) into $AXE_DIR"
  mkdir -p "$AXE_DIR"
  npm install --prefix "$AXE_DIR" --no-audit --no-fund --silent "axe-core@$AXE_VERSION"
fi
echo "install-test-peers: axe-core -> $AXE_DIR/node_modules/axe-core/axe.min.js"

# Say where each peer is, so a failing run shows what was found.
for tool in smtp-sink smtp-source spamassassin chromium opendkim openssl; do
  path="$(command -v "$tool" 2>/dev/null || true)"
  [ -z "$path" ] && [ -x "/usr/sbin/$tool" ] && path="/usr/sbin/$tool"
  if [ -z "$path" ]; then
    echo "install-test-peers: $tool is still missing" >&2
    exit 1
  fi
  echo "install-test-peers: $tool -> $path"
done
pg_initdb="$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1)"
if [ -z "$pg_initdb" ]; then
  echo "install-test-peers: PostgreSQL's initdb is still missing (apt-get install postgresql)" >&2
  exit 1
fi
echo "install-test-peers: initdb -> $pg_initdb"
"$PY" -c 'import dkim, aiosmtpd; print("install-test-peers: python dkim ->", dkim.__file__, "aiosmtpd ->", aiosmtpd.__file__)'
