# Sourced by scripts/testbed and its recipes (testbed-musl, -slim, -sid): where their
# source images come from, and how they run side by side. The official image when a registry answers; otherwise a stand-in built from the
# upstream tarballs of Debian source packages, downloaded once into $src_cache/<package>.
# The sourcing script sets docker, top, src_cache and wheels and defines say and die.
# scripts/testbed runs the stand-ins' scripts side by side, so whatever they share (apt,
# a source package, the pip wheel) is taken under a lock.

# locked NAME COMMAND...: COMMAND (a program or a function) while holding the test bed's
# lock NAME.
locked() {
    local name="$1"
    shift
    mkdir -p "$top/locks"
    ( flock 9 || exit 1; "$@" ) 9>"$top/locks/$name"
}

# for_each_beside COMMAND ARG...: COMMAND ARG for every ARG, side by side; fails when
# any of them failed (each says why on its own lines).
for_each_beside() {
    local command="$1" arg pid pids=() failed=0
    shift
    for arg in "$@"; do
        "$command" "$arg" &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do
        wait "$pid" || failed=1
    done
    return "$failed"
}

# apt_install LOG PACKAGE...: installs what of PACKAGE... is missing, one apt at a time.
apt_install() {
    local log="$1" missing=() p
    shift
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    say "installing ${missing[*]}"
    locked apt env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >"$log" 2>&1 \
        || { tail -n 20 "$log"; die "apt-get install failed"; }
}

# use_official IMAGE TAG: pulls the official IMAGE (amd64) and tags it TAG, the test bed's
# name the tests use; fails fast, with nothing tagged, when no registry answers.
use_official() {
    if timeout 300 "$docker" pull -q --platform linux/amd64 "$1" >/dev/null 2>&1; then
        "$docker" tag "$1" "$2"
        say "$2 is the official $1"
        return 0
    fi
    return 1
}

# enable_deb_src: bookworm's and trixie's source packages become known to apt.
enable_deb_src() {
    locked apt enable_deb_src_unlocked
}
enable_deb_src_unlocked() {
    local sources_list=/etc/apt/sources.list.d/dpy-testbed-src.sources mirror
    [ -f "$sources_list" ] && return
    mirror="$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
    printf 'Types: deb-src\nURIs: %s\nSuites: bookworm trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "${mirror:-http://deb.debian.org/debian}" >"$sources_list"
    apt-get update -qq || { rm -f "$sources_list"; return 1; }
}

# orig_tarball DIR: the upstream tarball among a downloaded source package's files.
orig_tarball() {
    local f
    for f in "$1"/*.orig.tar.*; do
        case "$f" in *.asc) ;; *) [ -e "$f" ] && { echo "$f"; return 0; } ;; esac
    done
    return 1
}

# fetch PACKAGE [VERSION-PREFIX]: the upstream orig tarball of a Debian source package,
# trying each listed version in turn (some listed versions 404 on the mirror).
# The files go to a scratch directory first: a directory holding a tarball is complete.
fetch() {
    locked "src-$1" fetch_unlocked "$@"
}
fetch_unlocked() {
    local package="$1" prefix="${2:-}" dir="$src_cache/$1" version
    if orig_tarball "$dir" >/dev/null; then
        return
    fi
    rm -rf "$dir.part"
    mkdir -p "$dir.part"
    for version in $(apt-cache showsrc "$package" | awk '/^Version:/ { print $2 }'); do
        case "$version" in "$prefix"*) ;; *) continue ;; esac
        if (cd "$dir.part" && apt-get source -qq --download-only "$package=$version" >/dev/null 2>&1); then
            rm -rf "$dir"
            mv "$dir.part" "$dir"
            return
        fi
        rm -f "$dir.part"/*
    done
    die "no version of the $package source package could be downloaded"
}

# unpack PACKAGE DIR: the orig tarball into DIR (its top-level directory stripped).
unpack() {
    local tarball
    tarball="$(orig_tarball "$src_cache/$1")"
    rm -rf "$2"
    mkdir -p "$2"
    tar -xf "$tarball" -C "$2" --strip-components=1
}

# finish_usr_local ROOT X.Y: /usr/local as the official Dockerfiles leave it after
# `make install`: no tests, no bytecode, no static library, the python3 and python links,
# and pip installed from its wheel on PyPI (downloaded once into $wheels).
finish_usr_local() {
    local root="$1" version="$2" wheel
    find "$root/usr/local" -depth \( \( -type d -a \( -name test -o -name tests -o -name idle_test \) \) \
        -o \( -type f -a \( -name '*.pyc' -o -name '*.pyo' -o -name 'libpython*.a' \) \) \) -exec rm -rf '{}' +
    find "$root/usr/local" -depth -type d -name __pycache__ -exec rm -rf '{}' +
    ln -sf "python$version" "$root/usr/local/bin/python3"
    ln -sf python3 "$root/usr/local/bin/python"
    mkdir -p "$wheels"
    locked wheels download_pip
    for wheel in "$wheels"/pip-*.whl; do :; done
    mkdir -p "$root/usr/local/lib/python$version/site-packages"
    python3 -m zipfile -e "$wheel" "$root/usr/local/lib/python$version/site-packages"
    printf '#!/usr/local/bin/python%s\nimport sys\nfrom pip._internal.cli.main import main\nsys.exit(main())\n' \
        "$version" >"$root/usr/local/bin/pip$version"
    chmod 0755 "$root/usr/local/bin/pip$version"
    ln -sf "pip$version" "$root/usr/local/bin/pip3"
    ln -sf pip3 "$root/usr/local/bin/pip"
}

download_pip() {
    compgen -G "$wheels/pip-*.whl" >/dev/null && return
    python3 -m pip download -q --no-deps --only-binary=:all: -d "$wheels.part" pip
    mkdir -p "$wheels"
    mv "$wheels.part"/pip-*.whl "$wheels/"
    rm -rf "$wheels.part"
}
