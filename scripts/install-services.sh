#!/usr/bin/env bash
# Install the services the integration tests start, on a fresh Debian 12 machine (run as root).
# Idempotent: a service already on PATH is left alone, and the package lists are refreshed at
# most once, only when something has to be installed.
#
# To add a service, write an install_<name> function that returns early when the service is
# present, and list it in SERVICES below.
set -euo pipefail

SERVICES=(litecoind pdftotext chromium anvil)

log() { printf 'install-services: %s\n' "$*"; }
die() { printf 'install-services: error: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

APT_UPDATED=0
apt_install() {
    have apt-get || die "apt-get not found; install $* by hand (this script targets Debian 12)"
    if [ "$(id -u)" -ne 0 ]; then
        die "installing $* needs root; run: sudo $0"
    fi
    if [ "$APT_UPDATED" -eq 0 ]; then
        log "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
            || die "apt-get update failed"
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
        || die "apt-get install $* failed"
}

install_litecoind() {
    if have litecoind; then
        log "litecoind present: $(command -v litecoind)"
        return
    fi
    apt_install litecoind
    have litecoind || die "litecoind is still not on PATH after installing the package"
    log "litecoind installed: $(litecoind -version 2>/dev/null | head -n1)"
}

install_pdftotext() {
    # Report tests read the PDFs back as text.
    if have pdftotext; then
        log "pdftotext present: $(command -v pdftotext)"
        return
    fi
    apt_install poppler-utils
    have pdftotext || die "pdftotext is still not on PATH after installing poppler-utils"
}

install_chromium() {
    # The web investigator's browser tests drive Debian's Chromium through Playwright.
    if have chromium; then
        log "chromium present: $(command -v chromium)"
        return
    fi
    apt_install chromium
    have chromium || die "chromium is still not on PATH after installing the package"
}

install_anvil() {
    # Ethereum tests run a local anvil node (npm package @foundry-rs/anvil, binary included).
    if have anvil; then
        log "anvil present: $(command -v anvil)"
        return
    fi
    have npm || apt_install npm
    if [ "$(id -u)" -ne 0 ]; then
        die "installing anvil needs root (npm install -g); run: sudo $0"
    fi
    log "npm install -g @foundry-rs/anvil"
    npm install -g --silent @foundry-rs/anvil >/dev/null || die "npm install of anvil failed"
    have anvil || die "anvil is still not on PATH after npm install -g @foundry-rs/anvil"
    log "anvil installed: $(anvil --version 2>/dev/null | head -n1)"
}

for service in "${SERVICES[@]}"; do
    "install_${service}"
done
log "done"
