#!/usr/bin/env bash
# One-shot machine set-up for nixproc on Debian bookworm (run as root).
# Installs Nix (Debian nix-bin 2.8.0), the Nix headers from Debian's source
# package (Debian ships none), the -dev packages those headers need, and the
# process managers / tools the integration tests drive. Idempotent.
set -euo pipefail

NIX_INCLUDE_PREFIX=${NIX_INCLUDE_PREFIX:-/usr/local/include}
SRC_CACHE=${NIXPROC_SETUP_CACHE:-/var/cache/nixproc-setup}

log() { printf '[setup] %s\n' "$*" >&2; }

if [ "$(id -u)" != 0 ]; then
    echo "setup.sh must run as root (it installs Debian packages)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive

# 1. deb-src entry, so `apt-get source nix` can fetch the 2.8.0 sources.
if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src' /etc/apt/sources.list; then
    log "adding a deb-src entry for bookworm"
    cat > /etc/apt/sources.list.d/nixproc-deb-src.sources <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi

PKGS=(
    # Nix itself, and what its headers need to compile a plugin
    nix-bin libboost-dev libgc-dev nlohmann-json3-dev pkg-config dpkg-dev
    # process managers and services the tests drive
    supervisor s6 execline nginx-light systemd postgresql
    # tools the tests and examples use
    curl procps psmisc age zstd hyperfine sqlite3 python3
)
if dpkg-query -W -f='${Status}\n' "${PKGS[@]}" 2>/dev/null | grep -qv 'install ok installed' \
    || [ "$(dpkg-query -W -f='${Status}\n' "${PKGS[@]}" 2>/dev/null | wc -l)" != "${#PKGS[@]}" ]; then
    log "apt-get update"
    apt-get update -qq
    log "installing: ${PKGS[*]}"
    apt-get install -y -qq --no-install-recommends "${PKGS[@]}" >/dev/null
    # Debian starts services on install; the tests run their own instances.
    for svc in nginx supervisor postgresql; do
        (service "$svc" stop >/dev/null 2>&1 || true)
    done
else
    log "Debian packages already installed"
fi

# 2. Nix headers from Debian's source package (byte-identical to upstream 2.8.0).
NIX_VERSION=$(nix-instantiate --version | awk '{print $NF}')
if [ ! -f "$NIX_INCLUDE_PREFIX/nix/eval.hh" ] || ! grep -qs "\"$NIX_VERSION\"" "$NIX_INCLUDE_PREFIX/nix/config.h"; then
    log "fetching Nix $NIX_VERSION sources for the headers"
    apt-get update -qq
    mkdir -p "$SRC_CACHE"
    (cd "$SRC_CACHE" && rm -rf nix-src && mkdir nix-src && cd nix-src &&
        apt-get source -qq --download-only nix >/dev/null &&
        dpkg-source -x --skip-patches ./*.dsc src >/dev/null)
    src="$SRC_CACHE/nix-src/src"
    mkdir -p "$NIX_INCLUDE_PREFIX/nix"
    for lib in libutil libstore libexpr libmain libfetchers libcmd; do
        cp "$src/src/$lib"/*.hh "$NIX_INCLUDE_PREFIX/nix/"
    done
    # HAVE_BOEHMGC changes sizeof(EvalState): it must match Debian's build.
    cat > "$NIX_INCLUDE_PREFIX/nix/config.h" <<CFG
#define HAVE_BOEHMGC 1
#define HAVE_STRUCT_DIRENT_D_TYPE 1
#define SYSTEM "x86_64-linux"
#define PACKAGE_VERSION "$NIX_VERSION"
CFG
    rm -rf "$SRC_CACHE/nix-src"
    log "Nix headers installed in $NIX_INCLUDE_PREFIX/nix"
fi

# 3. Nix configuration for a single-user, daemon-less store used as root.
mkdir -p /etc/nix /nix/var/nix/profiles /nix/var/nix/gcroots
if ! grep -qs 'nixproc-setup' /etc/nix/nix.conf; then
    log "writing /etc/nix/nix.conf"
    cat > /etc/nix/nix.conf <<'CONF'
# nixproc-setup: single-user store, no binary cache (no network here)
build-users-group =
substituters =
sandbox = false
experimental-features = nix-command
CONF
fi

log "done: $(nix-instantiate --version)"
