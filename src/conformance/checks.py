"""checks: the runtime invariants of a dpy image, proven inside it.

Runs in the RUNTIME image as its default user, through its entrypoint interpreter
(`-c <this file>`), with DPY_EXPECT holding a JSON object (see src/conformance/mod.rs).
Prints one JSON object per check: {"check", "ok", "detail"}; exits 0 only if all pass.
Each check is isolated: an exception is that check's failure.
"""

import fnmatch
import json
import os
import subprocess
import sys
import sysconfig

EXPECT = json.loads(os.environ.get("DPY_EXPECT", "{}"))
SURVEY = EXPECT.get("survey") or {}
STRIP = EXPECT.get("strip", [])
ZIP_NAME = EXPECT.get("zip_name") or "python%d%d.zip" % sys.version_info[:2]
RESULTS = []

# Without a survey of the source, these must import everywhere.
CORE_MODULES = ["json", "ssl", "asyncio", "email.message", "http.client", "decimal", "sqlite3",
                "ctypes", "zlib", "bz2", "lzma", "hashlib", "socket", "select", "uuid", "zoneinfo"]


def check(name):
    def register(function):
        try:
            ok, detail = function()
        except BaseException as e:  # a crash in one check is that check's failure
            ok, detail = False, "%s: %s" % (type(e).__name__, e)
        RESULTS.append({"check": name, "ok": bool(ok), "detail": detail})
        return function
    return register


def python(*args, **kwargs):
    """Runs this interpreter in a fresh process (as `python` would be in the image)."""
    return subprocess.run([sys.executable] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=120, **kwargs)


def stripped(name):
    return any(fnmatch.fnmatch(name.split(".", 1)[0], p) for p in STRIP)


@check("stdlib-imports")
def _():
    wanted = SURVEY.get("stdlib_modules") or CORE_MODULES
    wanted = [m for m in wanted if not stripped(m)]
    # A child process: importing hundreds of modules must not disturb the other checks.
    code = ("import contextlib, io, json, sys\n"
            "failed = {}\n"
            "sink = io.StringIO()\n"
            "for name in json.loads(sys.argv[1]):\n"
            "    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):\n"
            "        try:\n"
            "            __import__(name)\n"
            "        except BaseException as e:\n"
            "            failed[name] = '%s: %s' % (type(e).__name__, e)\n"
            "sys.__stdout__.write(json.dumps(failed))\n")
    out = python("-c", code, json.dumps(wanted))
    failed = json.loads(out.stdout or "null")
    if failed is None:
        return False, "the import run crashed: %s" % out.stderr.strip()[-300:]
    if failed:
        shown = ["%s (%s)" % (k, v) for k, v in sorted(failed.items())[:10]]
        return False, "%d of %d do not import: %s" % (len(failed), len(wanted), "; ".join(shown))
    return True, "%d modules import%s" % (len(wanted), "" if SURVEY else " (core list: no survey)")


@check("stdlib-zipped")
def _():
    zips = [p for p in sys.path if p.endswith(ZIP_NAME)]
    if not zips or not os.path.isfile(zips[0]):
        return False, "%s is not an existing sys.path entry: %s" % (ZIP_NAME, sys.path)
    import json as probe
    if not probe.__file__.startswith(zips[0] + os.sep):
        return False, "json comes from %s, not the zip" % probe.__file__
    stdlib = sysconfig.get_paths()["stdlib"]
    keep = set(os.path.realpath(p) for p in (sysconfig.get_paths()["purelib"],))
    sources = []
    for current, dirs, files in os.walk(stdlib):
        dirs[:] = [d for d in dirs if os.path.realpath(os.path.join(current, d)) not in keep
                   and d not in ("site-packages", "dist-packages")]
        sources += [os.path.join(current, f) for f in files if f.endswith(".py")]
    if sources:
        return False, "stdlib sources left on disk: %s" % sources[:5]
    if not os.path.isfile(os.path.join(stdlib, "os.pyc")):
        return False, "the prefix landmark %s/os.pyc is missing" % stdlib
    dynload = [p for p in sys.path if p.endswith("lib-dynload") and os.path.isdir(p)]
    if not dynload or not any(f.endswith(".so") for f in os.listdir(dynload[0])):
        return False, "no lib-dynload with extension modules on sys.path"
    return True, "%s (%d bytes), landmark and lib-dynload present" % (zips[0], os.path.getsize(zips[0]))


@check("traceback-paths")
def _():
    out = python("-c", "import json; json.loads('{')")
    wanted = "%s/json/decoder.py" % ZIP_NAME
    if wanted not in out.stderr:
        return False, "the traceback does not name .../%s: %s" % (wanted, out.stderr.strip()[-300:])
    if '"./json/' in out.stderr or "File \"json/" in out.stderr:
        return False, "the traceback names a relative path"
    return True, "tracebacks name %s" % wanted


@check("compression")
def _():
    import bz2, gzip, lzma, zlib
    data = b"distroless " * 1000
    for module in (bz2, gzip, lzma, zlib):
        if module.decompress(module.compress(data)) != data:
            return False, "%s round-trip differs" % module.__name__
    return True, "bz2, gzip, lzma, zlib round-trip"


@check("sqlite3")
def _():
    import sqlite3
    db = sqlite3.connect(":memory:")
    db.execute("create table t (k text, v integer)")
    db.executemany("insert into t values (?, ?)", [("a", 1), ("b", 2)])
    total = db.execute("select sum(v) from t").fetchone()[0]
    return total == 3, "sqlite %s round-trip" % sqlite3.sqlite_version


@check("thread-recursion")
def _():
    # musl's default thread stack is small (128 KiB); CPython sets its own for threads
    # it starts. A crash here is a segfault in the child, reported as a failure.
    code = ("import sys, threading\n"
            "sys.setrecursionlimit(10000)\n"
            "def down(n):\n"
            "    return 0 if n == 0 else 1 + down(n - 1)\n"
            "result = []\n"
            "t = threading.Thread(target=lambda: result.append(down(900)))\n"
            "t.start(); t.join()\n"
            "print(result[0])\n")
    out = python("-c", code)
    return out.stdout.strip() == "900", "depth 900 in a thread: exit %d %s" % (out.returncode, out.stderr.strip()[-200:])


@check("tls-trust")
def _():
    import ssl
    paths = ssl.get_default_verify_paths()
    present = [p for p in (paths.openssl_cafile, paths.openssl_capath) if p and os.path.exists(p)]
    if not present:
        return False, "neither %s nor %s exists" % (paths.openssl_cafile, paths.openssl_capath)
    count = ssl.create_default_context().cert_store_stats()["x509_ca"]
    return count > 0, "%d CA certificates loaded (%s)" % (count, ", ".join(present))


@check("utc")
def _():
    import datetime, time
    offset = datetime.datetime.now().astimezone().utcoffset()
    names = set(time.tzname)
    return offset == datetime.timedelta(0) and names <= {"UTC", "GMT"}, "tzname %s, offset %s" % (time.tzname, offset)


@check("zoneinfo")
def _():
    import zoneinfo
    if SURVEY and not SURVEY.get("zoneinfo_paris", True):
        return True, "the source has no time zone data either"
    zone = zoneinfo.ZoneInfo("Europe/Paris")
    import datetime
    offset = datetime.datetime(2024, 7, 1, tzinfo=zone).utcoffset()
    return offset == datetime.timedelta(hours=2), "Europe/Paris summer offset %s" % offset


@check("find-library")
def _():
    import ctypes.util
    expected = SURVEY.get("find_library") or {}
    problems, found = [], []
    want_c = EXPECT.get("expect_find_library_c")
    if want_c is not None and bool(ctypes.util.find_library("c")) != want_c:
        problems.append("find_library('c') is %r" % ctypes.util.find_library("c"))
    for lib, there in sorted(expected.items()):
        here = ctypes.util.find_library(lib)
        if there and not here:
            problems.append("%s: %s in the source, None here" % (lib, there))
        elif here:
            found.append("%s=%s" % (lib, here))
        elif there is None and here:
            found.append("%s=%s (not in the source)" % (lib, here))
    if problems:
        return False, "; ".join(problems)
    return True, ", ".join(found) or "matches the source (nothing found there either)"


@check("utf8")
def _():
    encoding = sys.getfilesystemencoding()
    out = python("-c", "print('d\u00e9j\u00e0 vu \u2713')")
    ok = encoding == "utf-8" and out.returncode == 0 and "\u2713" in out.stdout
    return ok, "filesystem %s, stdout %s" % (encoding, "prints UTF-8" if out.returncode == 0 else out.stderr[-200:])


@check("shell")
def _():
    out = subprocess.run("echo $((1+2))", shell=True, stdout=subprocess.PIPE, universal_newlines=True)
    status = os.system("exit 3")
    sh = os.path.realpath("/bin/sh")
    ok = out.stdout.strip() == "3" and os.waitstatus_to_exitcode(status) == 3 and os.path.basename(sh).startswith("dash")
    return ok, "/bin/sh -> %s, shell=True and os.system work" % sh


@check("venv")
def _():
    target = "/tmp/dpy-venv-check"
    out = python("-m", "venv", target)
    if out.returncode != 0:
        return False, "python -m venv failed: %s" % out.stderr.strip()[-300:]
    run = subprocess.run([target + "/bin/python", "-c", "import sys; print(sys.prefix)"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    return run.stdout.strip() == target, "venv at %s runs (%s)" % (target, run.stderr.strip()[-100:] or "ok")


@check("no-pip")
def _():
    out = python("-c", "import pip")
    return "ModuleNotFoundError" in out.stderr, "import pip: %s" % (out.stderr.strip().splitlines() or ["imports"])[-1]


@check("ensurepip-noop")
def _():
    run = python("-m", "ensurepip")
    quiet = python("-c", "import ensurepip, ensurepip.__main__; print('still here')")
    ok = (run.returncode == 0 and "pip" in run.stderr and quiet.stdout.strip() == "still here"
          and not quiet.stderr)
    return ok, "python -m ensurepip: exit %d, says %r; import is silent: %s" % (
        run.returncode, run.stderr.strip()[:80], quiet.stdout.strip() == "still here" and not quiet.stderr)


@check("no-forbidden-binaries")
def _():
    dirs = set(os.environ.get("PATH", "").split(":")) | {"/bin", "/sbin", "/usr/bin", "/usr/sbin",
                                                        "/usr/local/bin", "/usr/local/sbin"}
    found = []
    for d in sorted(dirs):
        for name in EXPECT.get("forbidden", []):
            path = os.path.join(d, name)
            if os.path.lexists(path):
                found.append(path)
    return not found, "present: %s" % found if found else "none of %s" % ", ".join(EXPECT.get("forbidden", []))


@check("user")
def _():
    import grp, pwd, stat
    uid = os.getuid()
    user = pwd.getpwuid(uid)
    group = grp.getgrgid(os.getgid())
    tmp = os.stat("/tmp")
    ok = (uid == EXPECT.get("uid", 65532) and uid != 0 and user.pw_name == "nonroot"
          and stat.S_IMODE(tmp.st_mode) == 0o1777)
    with open("/tmp/dpy-write-check", "w") as f:
        f.write("ok")
    return ok, "uid %d (%s), group %s, /tmp %o" % (uid, user.pw_name, group.gr_name, stat.S_IMODE(tmp.st_mode))


@check("env")
def _():
    wanted = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}
    wrong = {k: os.environ.get(k) for k, v in wanted.items() if os.environ.get(k) != v}
    return not wrong, "unset or wrong: %s" % wrong if wrong else "PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1"


for result in RESULTS:
    sys.stdout.write(json.dumps(result) + "\n")
sys.exit(0 if all(r["ok"] for r in RESULTS) else 1)
