#!/bin/sh
# Gives the -buildroot image's builder a pip when the source has none (Debian's python3
# without python3-pip, as debootstrap makes it; a vendor's image without ensurepip's
# wheel): chroot-pip runs the builder's own `python3 -m pip`.
#
# In order: the source's own pip; the family's package manager, only when it owns the
# interpreter (python3-pip on a /usr/local CPython would bring a second Python); PyPI's
# pip wheel, checked against its published sha256 and installed through the builder's
# interpreter. Writes what it found to /opt/dpy/builder-pip.json, which the export
# hands to dpy for the metadata; `none` when nothing answered.
set -u
out=/opt/dpy/builder-pip.json
py="$(command -v python3 || command -v python || true)"

# What the package manager leaves behind besides the packages it installs: its logs (the
# time is in them), its caches (apt writes a new pkgcache.bin of other bytes each run,
# even offline when it fetched nothing) and the lists it downloaded. None of that is the
# builder's, and the -buildroot image is to repeat byte for byte, online or offline:
# these paths are put back as the source had them (kept in a tar before apt runs).
leftovers="var/log/dpkg.log var/log/alternatives.log var/log/apt var/cache/apt var/lib/apt/lists var/cache/ldconfig/aux-cache"
before=/tmp/dpy-apt-before.tar
keep_as_source() {
    present=""
    for p in $leftovers; do [ -e "/$p" ] && present="$present $p"; done
    # shellcheck disable=SC2086
    tar -C / --numeric-owner -cf "$before" $present 2>/dev/null || tar -C / -cf "$before" -T /dev/null
}
back_as_source() {
    [ -f "$before" ] || return 0
    for p in $leftovers; do rm -rf "/${p:?}"; done
    tar -C / --numeric-owner -xpf "$before"
    rm -f "$before"
}

record() {
    printf '{"origin": "%s", "version": "%s"}\n' "$1" "$2" >"$out"
    back_as_source
    # The log carries times and speeds too: shown when nothing answered, never kept.
    if [ "$1" = none ] && [ -s /tmp/builder-pip.log ]; then
        tail -n 5 /tmp/builder-pip.log | sed 's/^/builder-pip: /' >&2
    fi
    rm -f /tmp/builder-pip.log
    echo "builder-pip: ${1} ${2}"
    exit 0
}
# pip's own package, imported: its version and that it loads. Not `-m pip --version`,
# which imports most of pip and costs seconds on an emulated platform (chroot-pip runs
# that itself when it is used).
pip_version() { "$py" -c "import pip; print(pip.__version__)" 2>/dev/null; }

# No interpreter: the gather stage says so in its own error.
[ -n "$py" ] || record none ""
v="$(pip_version)"
[ -n "$v" ] && record source "$v"

ca=""
if [ -s /run/dpy-ca/bundle.pem ]; then
    ca=/run/dpy-ca/bundle.pem
    export SSL_CERT_FILE="$ca"
fi
real="$(readlink -f "$py")"

# apt's python3-pip is for the distribution's default python3: only when dpkg owns both
# the python3 on PATH and the interpreter it names (a python3.X beside another default
# would get the default's python3 package, which takes /usr/bin/python3 over).
if command -v apt-get >/dev/null 2>&1 && dpkg -S "$py" >/dev/null 2>&1 \
    && dpkg -S "$real" >/dev/null 2>&1; then
    keep_as_source
    opt=""
    [ -n "$ca" ] && opt="-o Acquire::https::CaInfo=$ca"
    # shellcheck disable=SC2086
    if apt-get $opt update >/tmp/builder-pip.log 2>&1 \
        && DEBIAN_FRONTEND=noninteractive apt-get $opt install -y --no-install-recommends python3-pip >>/tmp/builder-pip.log 2>&1; then
        v="$(pip_version)"
        [ -n "$v" ] && record apt "$v"
    fi
elif command -v apk >/dev/null 2>&1 && apk info -q --who-owns "$real" >/dev/null 2>&1; then
    if apk add --no-cache py3-pip >/tmp/builder-pip.log 2>&1; then
        v="$(pip_version)"
        [ -n "$v" ] && record apk "$v"
    fi
fi

# PyPI: the newest pip wheel this interpreter can run, by the JSON API, sha256 checked.
"$py" - >>/tmp/builder-pip.log 2>&1 <<'PY'
import hashlib, json, os, ssl, subprocess, sys, tempfile, urllib.parse, urllib.request
context = ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE") or None)
index = "https://pypi.org/pypi/pip/json"
with urllib.request.urlopen(index, timeout=60, context=context) as answer:
    files = json.load(answer)["urls"]
wheel = next(f for f in files if f["packagetype"] == "bdist_wheel")
# A mirror in front of PyPI may answer with file URLs relative to the JSON's own.
with urllib.request.urlopen(urllib.parse.urljoin(index, wheel["url"]), timeout=120, context=context) as answer:
    data = answer.read()
if hashlib.sha256(data).hexdigest() != wheel["digests"]["sha256"]:
    sys.exit("the pip wheel's sha256 is not the one PyPI publishes")
path = os.path.join(tempfile.mkdtemp(), wheel["filename"])
with open(path, "wb") as f:
    f.write(data)
# A wheel of pip runs pip: it installs itself, offline.
env = dict(os.environ, PIP_BREAK_SYSTEM_PACKAGES="1", PIP_ROOT_USER_ACTION="ignore",
           PIP_DISABLE_PIP_VERSION_CHECK="1")
subprocess.check_call([sys.executable, os.path.join(path, "pip"), "install", "--no-index", path], env=env)
PY
v="$(pip_version)"
[ -n "$v" ] && record pypi "$v"
record none ""
