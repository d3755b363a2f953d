# Sourced by chroot-pip and chroot-uv: what every install into $BUILD_ROOT shares.
#
# An install goes into a scratch root (the stage) first; only a finished stage is byte-
# compiled, grafted and copied over $BUILD_ROOT (and into $BUILD_ROOT_DIFF), so a failed
# install leaves $BUILD_ROOT as it was. Callers set `who` (their name, for messages).

# A CA bundle for TLS-intercepting proxies: `docker build --secret id=ca,src=FILE` with
# `RUN --mount=type=secret,id=ca ...`, or DPY_CA_FILE. Read at run time, never copied.
stage_trust() {
    ca="${DPY_CA_FILE:-}"
    if [ -z "$ca" ] && [ -s /run/secrets/ca ]; then
        ca=/run/secrets/ca
    fi
    if [ -n "$ca" ]; then
        export PIP_CERT="$ca" SSL_CERT_FILE="$ca" REQUESTS_CA_BUNDLE="$ca"
    fi
}

stage_require_build_root() {
    if [ -z "${BUILD_ROOT:-}" ]; then
        echo "$who: BUILD_ROOT is not set; run this in a dpy -buildroot image" >&2
        exit 2
    fi
}

stage_check_optimize() {
    case "$1" in
        0|1|2) ;;
        *) echo "$who: --optimize takes 0, 1 or 2, not '$1'" >&2; exit 2 ;;
    esac
}

# The builder's interpreter: the very one the runtime root carries, at the same path.
stage_python() {
    command -v python3 || command -v python
}

# The builder's pip, as the helpers run it: as root, into roots of their own, quietly
# about versions.
stage_pip() {
    PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_BREAK_SYSTEM_PACKAGES=1 \
        "$(stage_python)" -m pip "$@"
}

# Makes the stage ($stage), removed on exit.
stage_make() {
    stage="$(mktemp -d)"
    trap 'rm -rf "$stage"' EXIT INT TERM
}

# stage_finish OPTIMIZE: byte-compiles the stage, grafts the libraries its ELF files
# need, and copies it over $BUILD_ROOT and into $BUILD_ROOT_DIFF.
stage_finish() {
    py="$(stage_python)"
    # Sourceless .pyc next to where each .py was, naming the runtime path in tracebacks.
    "$py" -m compileall -q -b -f -o "$1" --invalidation-mode unchecked-hash \
        -s "$stage" -p / "$stage" >/dev/null
    find "$stage" -name '*.py' -type f -exec rm -f {} +
    find "$stage" -name '__pycache__' -type d -prune -exec rm -rf {} +

    # Shared libraries the new extension modules need and the runtime root lacks.
    DPY_HELPER="$who" "$py" /opt/dpy/gather.py --graft "$stage" "$BUILD_ROOT"

    cp -a "$stage/." "$BUILD_ROOT/"
    # glibc: ctypes.util.find_library reads the loader cache, which must list new libraries.
    if [ -f "$BUILD_ROOT/etc/ld.so.cache" ] && command -v ldconfig >/dev/null 2>&1; then
        ldconfig -X -r "$BUILD_ROOT"
        mkdir -p "$stage/etc"
        cp -a "$BUILD_ROOT/etc/ld.so.cache" "$stage/etc/ld.so.cache"
    fi
    # The same additions, alone, for `COPY --from=build $BUILD_ROOT_DIFF/ /` in a runtime stage.
    if [ -n "${BUILD_ROOT_DIFF:-}" ]; then
        mkdir -p "$BUILD_ROOT_DIFF"
        cp -a "$stage/." "$BUILD_ROOT_DIFF/"
    fi
}
