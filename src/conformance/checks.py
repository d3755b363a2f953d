"""checks: the runtime invariants of a dpy image, proven inside it.

Runs in the RUNTIME image as its default user, given to its entrypoint interpreter as
`-c <probes.py + this file>`, with env DPY_EXPECT holding a JSON object:
  {"survey": <survey.py's object or null>, "strip": [fnmatch patterns on top-level names],
   "family": "debian"|"alpine", "zip_name": "python311.zip", "uid": 65532,
   "forbidden": [names], "expect_find_library_c": true|false|null, "profile": "standard",
   "broken": [extension modules left out because they do not import in the source]}
Prints one JSON object per check and line, {"check", "ok", "detail"}, as each finishes;
exits 0 only if every check passed. Each check is isolated: an exception in one is that
check's failure. Anything that could crash the interpreter (hundreds of imports, deep
recursion) runs in a child process. Pure stdlib, Python 3.9-3.15, glibc and musl.
src/conformance/README.md says what each check proves.
"""

import fnmatch
import glob
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile

CHECKS = []
FAILED = []

try:
    EXPECT = json.loads(os.environ.get("DPY_EXPECT") or "{}")
    EXPECT_ERROR = None
except ValueError as e:
    EXPECT, EXPECT_ERROR = {}, "DPY_EXPECT is not JSON: %s" % e
SURVEY = EXPECT.get("survey") or {}
STRIP = EXPECT.get("strip") or []
BROKEN = EXPECT.get("broken") or []
# getpath's name, a free-threaded build's "t" included (python314t.zip).
ZIP_NAME = EXPECT.get("zip_name") or "python%d%d%s.zip" % (
    sys.version_info[0], sys.version_info[1], sysconfig.get_config_var("ABI_THREAD") or "")
# The zip that holds the whole stdlib, named after getpath's zip entry (ZIP_NAME), which
# is no file: what a bare start imports is on disk in the stdlib directory.
STDLIB_ZIP = EXPECT.get("stdlib_zip")
UID = EXPECT.get("uid", 65532)
FORBIDDEN = EXPECT.get("forbidden") or ["bash", "busybox", "apk", "apt", "apt-get", "dpkg",
                                         "pip", "pip3", "ls"]
BIN_DIRS = ["/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"]
UTC_NAMES = {"UTC", "GMT", "UCT", "Universal", "Zulu", "Etc/UTC", "Etc/GMT"}

# Without a survey of the source, these must import everywhere: what applications and
# the other checks lean on.
CORE_MODULES = ["asyncio", "bz2", "ctypes", "ctypes.util", "datetime", "decimal", "email.message",
                "hashlib", "http.client", "json", "lzma", "multiprocessing", "select", "socket",
                "sqlite3", "ssl", "subprocess", "urllib.request", "uuid", "venv", "zlib",
                "zoneinfo"]

# IMPORT_LOOP, STACK_PROBE and STACK_DEPTHS come from probes.py, sent ahead of this file.

# ---- Helpers ----


def check(name):
    """Registers a check; it returns (ok, detail)."""
    def register(function):
        CHECKS.append((name, function))
        return function
    return register


def interpreter():
    # sys.executable is what `python` is in this image; empty only if the interpreter
    # could not tell its own path, which is itself worth seeing fail.
    return sys.executable or "python3"


def python(*args, **kwargs):
    """Runs this image's interpreter in a fresh process; stdin is never inherited."""
    kwargs.setdefault("timeout", 300)
    kwargs.setdefault("universal_newlines", True)
    if "input" not in kwargs:
        kwargs["stdin"] = subprocess.DEVNULL
    return subprocess.run([interpreter()] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, **kwargs)


def tail(text, size=240):
    text = (text or "").strip()
    return text if len(text) <= size else "..." + text[-size:]


def stripped(name):
    return any(fnmatch.fnmatch(name.split(".", 1)[0], p) for p in STRIP)


def zip_entry():
    """getpath's zip entry of sys.path, or None (the stdlib zip of images made before the
    stdlib zip had its own name)."""
    for entry in sys.path:
        if os.path.basename(entry) == ZIP_NAME:
            return entry
    return None


def stdlib_entry():
    """The stdlib zip's sys.path entry, or None (images made before it had its own name
    have getpath's zip entry as the stdlib zip)."""
    if not STDLIB_ZIP:
        return zip_entry()
    return STDLIB_ZIP if STDLIB_ZIP in sys.path else None


def in_source(module):
    """Whether `module` imports in the source: the survey says; without one, whether this
    Python has it at all (so a 3.14 image must carry compression.zstd's library)."""
    if SURVEY.get("stdlib_modules") is not None:
        return module in SURVEY["stdlib_modules"]
    return not built_on_broken(module)


def from_stdlib_zip(path):
    """Whether `path` (a module's origin, a traceback's file) lies inside the stdlib zip."""
    entry = stdlib_entry()
    return bool(entry and path and path.startswith(entry + os.sep))


def child_json(*args, **kwargs):
    """Runs this image's interpreter with `args`; the JSON its last stdout line holds, or
    an exception that carries its exit code and stderr."""
    out = python(*args, **kwargs)
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        raise RuntimeError("the child exited %d: %s" % (out.returncode, tail(out.stderr)))
    return json.loads(lines[-1])


def is_utf8(name):
    import codecs
    try:
        return codecs.lookup(name or "").name == "utf-8"
    except LookupError:
        return False


# ---- The checks, in the order they are reported ----


def import_each(names):
    """Imports `names` in a child with IMPORT_LOOP (the survey's loop, in sorted order):
    hundreds of imports must not disturb the other checks, and a crash while importing
    is the caller's failure. Returns ({name: "Type: message"} of failures, None), or
    (None, why the child died)."""
    code = ("import json, sys\nnames = json.loads(sys.stdin.read())\n" + IMPORT_LOOP
            + "\nsys.stdout.write(json.dumps(failed))\n")
    out = python("-c", code, input=json.dumps(sorted(names)), timeout=900)
    try:
        return json.loads(out.stdout), None
    except ValueError:
        return None, "the import run died (exit %d): %s" % (out.returncode, tail(out.stderr))


def left_out_marker():
    """Part of the ImportError of every module the image's profile leaves out (the stubs
    gather.py writes)."""
    return "dpy's %s profile leaves it out" % EXPECT.get("profile", "standard")


def built_on_broken(module):
    top = module.split(".", 1)[0]
    return top in BROKEN or "_" + top in BROKEN


@check("broken-modules")
def broken_modules():
    # Extension modules that do not import in the source (a library they need is not
    # there) are left out: absent here, and with a survey, absent from what imports there.
    if not BROKEN:
        return True, "the build left no module out for not importing in the source"
    importable = sorted(set(BROKEN) - set(import_each(BROKEN)[0] or {}))
    if importable:
        return False, "left out as broken in the source, yet importable here: %s" % ", ".join(importable)
    dynload = sysconfig.get_config_var("DESTSHARED") or ""
    files = sorted(f for name in BROKEN for f in glob.glob(os.path.join(dynload, name + ".*")))
    if files:
        return False, "left out as broken, yet their files are here: %s" % ", ".join(files)
    in_source = set(SURVEY.get("stdlib_modules") or []).intersection(BROKEN)
    if in_source:
        return False, "left out as broken, yet they import in the source: %s" % ", ".join(sorted(in_source))
    return True, "absent as the build recorded, not importable in the source either: %s" % ", ".join(BROKEN)


@check("stdlib-imports")
def stdlib_imports():
    wanted = SURVEY.get("stdlib_modules") or CORE_MODULES
    # A core module built on a broken extension (sqlite3 on _sqlite3) fails in the
    # source too; with a survey it is not on the list anyway.
    wanted = [m for m in wanted if not stripped(m) and not built_on_broken(m)]
    failed, died = import_each(wanted)
    if died:
        return False, died
    source = "the source's importable stdlib" if SURVEY.get("stdlib_modules") else \
        "the core list (no survey of the source)"
    # Modules that need one the profile leaves out (dbm.ndbm needs _dbm) fail with that
    # module's stub error, which names the profile: expected, and counted apart.
    marker = left_out_marker()
    dependents = sorted(k for k, v in failed.items() if marker in v)
    for name in dependents:
        del failed[name]
    if failed:
        shown = "; ".join("%s (%s)" % (k, v[:120]) for k, v in sorted(failed.items())[:15])
        more = " ..." if len(failed) > 15 else ""
        return False, "%d of %d modules of %s do not import: %s%s" % (
            len(failed), len(wanted), source, shown, more)
    if dependents:
        return True, "all %d modules of %s import, but %d that need a module the profile leaves out (%s)" % (
            len(wanted) - len(dependents), source, len(dependents), ", ".join(dependents[:8])
            + (" ..." if len(dependents) > 8 else ""))
    return True, "all %d modules of %s import" % (len(wanted), source)


@check("stdlib-zipped")
def stdlib_zipped():
    import importlib.machinery
    problems = []
    entry = stdlib_entry()
    if entry is None:
        problems.append("the stdlib zip %s is not on sys.path %s" % (STDLIB_ZIP or ZIP_NAME, sys.path))
    elif not os.path.isfile(entry):
        problems.append("%s is on sys.path but is no file" % entry)
    else:
        import json as probe
        if not from_stdlib_zip(probe.__file__):
            problems.append("json is imported from %s, not from the stdlib zip" % probe.__file__)
    paths = sysconfig.get_paths()
    stdlib = paths["stdlib"]
    # site-packages may sit inside the stdlib dir (official layout): its .py files are
    # the user's, not the stdlib's. lib-dynload holds extension modules only.
    keep_out = set(os.path.realpath(paths[k]) for k in ("purelib", "platlib"))
    sources = []
    for current, dirs, files in os.walk(stdlib):
        dirs[:] = [d for d in dirs
                   if d not in ("site-packages", "dist-packages", "lib-dynload")
                   and os.path.realpath(os.path.join(current, d)) not in keep_out]
        sources += [os.path.join(current, f) for f in files if f.endswith(".py")]
    if sources:
        problems.append("%d stdlib sources on disk, e.g. %s" % (len(sources), ", ".join(sorted(sources)[:3])))
    # getpath finds the prefix by this landmark (os.py, or os.pyc since there is no .py).
    landmark = os.path.join(stdlib, "os.pyc")
    if not os.path.isfile(landmark):
        problems.append("the prefix landmark %s is missing" % landmark)
    dynload = [p for p in sys.path if os.path.basename(p) == "lib-dynload" and os.path.isdir(p)]
    extensions = []
    if not dynload:
        problems.append("no lib-dynload directory on sys.path")
    else:
        suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
        extensions = [f for f in os.listdir(dynload[0]) if f.endswith(suffixes)]
        if not extensions:
            problems.append("%s holds no extension modules" % dynload[0])
    # A missing landmark or prefix shows as a warning at every start-up.
    startup = python("-c", "pass")
    if startup.returncode != 0 or startup.stderr.strip():
        problems.append("`python -c pass` is not silent (exit %d): %s" % (
            startup.returncode, tail(startup.stderr)))
    if problems:
        return False, "; ".join(problems)
    return True, "%s (%d bytes) on sys.path, json from it, no .py in %s, landmark %s, %d extension " \
        "modules in %s" % (entry, os.path.getsize(entry), stdlib, landmark, len(extensions), dynload[0])


@check("traceback-paths")
def traceback_paths():
    # What a user sees: the traceback an uncaught error prints in a fresh interpreter.
    out = python("-c", "import json; json.loads('{')")
    files = re.findall(r'File "([^"]+)"', out.stderr)
    entry = stdlib_entry() or ("<sys.path entry>/" + ZIP_NAME)
    wanted = os.path.join(entry, "json", "decoder.py")
    decoder = [f for f in files if f.replace(os.sep, "/").endswith("json/decoder.py")]
    if not decoder:
        return False, "no json/decoder.py frame in the traceback: %s" % tail(out.stderr)
    wrong = [f for f in decoder if f != wanted]
    if wrong:
        return False, "the traceback names %s, not %s" % (wrong[0], wanted)
    relative = [f for f in files if not os.path.isabs(f) and not f.startswith("<")]
    if relative:
        return False, "the traceback names relative paths: %s" % relative
    return True, "tracebacks name %s" % wanted


@check("compression")
def compression():
    import importlib
    data = ("distroless \u2713 " * 2000).encode("utf-8")
    done = []
    # compression.zstd (3.14) needs libzstd: a runtime image without it fails here.
    names = ["bz2", "gzip", "lzma", "zlib"]
    if sys.version_info >= (3, 14):
        names.append("compression.zstd")
    for name in names:
        if built_on_broken(name) or (name == "compression.zstd" and not in_source(name)):
            done.append("%s left out (not in the source)" % name)
            continue
        module = importlib.import_module(name)
        packed = module.compress(data)
        if module.decompress(packed) != data:
            return False, "%s round-trip changed the data" % module.__name__
        done.append("%s %d->%d" % (module.__name__, len(data), len(packed)))
    return True, ", ".join(done)


@check("sqlite3")
def sqlite():
    if built_on_broken("sqlite3"):
        return True, "_sqlite3 was left out: it does not import in the source"
    import sqlite3
    db = sqlite3.connect(":memory:")
    try:
        db.execute("create table t (k text primary key, v integer)")
        db.executemany("insert into t values (?, ?)", [("a", 1), ("b", 2), ("\u00e9", 39)])
        rows = db.execute("select k, v from t order by v").fetchall()
    finally:
        db.close()
    ok = rows == [("a", 1), ("b", 2), ("\u00e9", 39)]
    return ok, "sqlite %s in-memory round-trip %s" % (sqlite3.sqlite_version, "ok" if ok else rows)


# The child of each start method reports where its stdlib comes from.
MULTIPROCESSING_PROBE = r"""
import json, multiprocessing, sys
def origin():
    import json
    return json.__spec__.origin
if __name__ == "__main__":
    report = {"default": multiprocessing.get_start_method()}
    for method in [None] + sorted(multiprocessing.get_all_start_methods()):
        context = multiprocessing.get_context(method)
        with context.Pool(2) as pool:
            squares = pool.map(abs, [-3, -4])
            # A function of this script: pickled by reference, as applications do.
            where = pool.apply(origin)
        report[method or "default-pool"] = [squares, where]
    print(json.dumps(report))
"""


@check("multiprocessing")
def multiprocessing_children():
    # Every start method's children start an interpreter through the image (3.14's
    # default is forkserver: a server process, then each child, import from the zip).
    script = os.path.join(tempfile.mkdtemp(), "pool.py")
    with open(script, "w") as f:
        f.write(MULTIPROCESSING_PROBE)
    report = child_json(script)
    wrong = []
    for method, answer in sorted(report.items()):
        if method == "default":
            continue
        squares, where = answer
        if squares != [3, 4] or (stdlib_entry() and not from_stdlib_zip(where)):
            wrong.append("%s: %s, json from %s" % (method, squares, where))
    if wrong:
        return False, "pool children went wrong: %s" % "; ".join(wrong)
    methods = sorted(m for m in report if m not in ("default", "default-pool"))
    return True, "default start method %s; pools of %s each map and import json from the stdlib zip" % (
        report["default"], ", ".join(methods))


# Drives the interactive REPL through a pseudo-terminal: a prompt, one line, its answer.
# Every wait is bounded and the child is killed at the end, so a REPL that never prompts
# fails in a minute rather than hanging the check. Before it starts the REPL, the child
# says whether its standard input is a terminal, which is what decides the REPL's mode.
REPL_PROBE = r"""
import json, os, pty, select, signal, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.environ.setdefault("TERM", "xterm")
    os.write(1, b"dpy-isatty=%d\r\n" % os.isatty(0))
    os.execv(sys.executable, [sys.executable, "-q"])
seen = b""
# Reads until `marker` is in what came after offset `after`; whether it came.
def until(marker, limit=60, after=0):
    global seen
    end = time.time() + limit
    while marker not in seen[after:] and time.time() < end:
        if select.select([fd], [], [], 0.5)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    return marker in seen[after:]
if until(b"dpy-isatty="):
    until(b"\n", 10, seen.index(b"dpy-isatty="))
tty = b"dpy-isatty=1" in seen
prompt = tty and until(b">>> ")
if prompt:
    os.write(fd, b"print(6 * 7, getattr(__import__('sys').modules.get('_pyrepl'), '__file__', 'basic'))\r")
    # The answer, then the prompt after it (the one before it may end with the same bytes).
    if until(b"42 "):
        until(b"\r\n>>> ", 30, seen.rindex(b"42 "))
    os.write(fd, b"exit()\r")
status = None
end = time.time() + (30 if prompt else 0)
while status is None and time.time() < end:
    done, code = os.waitpid(pid, os.WNOHANG)
    if done:
        status = code
    else:
        until(b"\0", 0.5)
if status is None:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
text = seen.decode("utf-8", "replace")
origin = text.rsplit("42 ", 1)[-1].split("\r", 1)[0] if "42 " in text else None
print(json.dumps({"prompt": prompt, "origin": origin, "status": status, "tail": text[-200:],
                  "tty": tty}))
"""


@check("repl")
def repl():
    # The interactive REPL answers in a terminal. From 3.14 it is _pyrepl, pure Python
    # from the stdlib zip that reads terminal capabilities itself, so it must be that
    # REPL even without a terminfo database; 3.13's _pyrepl asks curses for one, and
    # without it falls back to the basic REPL, saying so.
    got = child_json("-c", REPL_PROBE)
    origin = got["origin"]
    if not got["tty"]:
        # An emulator's doing, not the image's: Debian 12's qemu 7.2 has no TCGETS2 ioctl,
        # which sid's glibc (2.43) asks for in isatty(), so under it no terminal is one
        # and a REPL would read its input as a script. The source fails the same way.
        return False, "a pseudo-terminal is not a terminal here (isatty() is false on it), so there is no REPL to try"
    if not got["prompt"] or not origin or got["status"] != 0:
        return False, "the REPL in a terminal: prompt %s, answer %s, exit status %s: %r" % (
            got["prompt"], origin, got["status"], got["tail"])
    if origin == "basic":
        if sys.version_info >= (3, 14):
            return False, "the REPL fell back to the basic one: %r" % got["tail"]
        if sys.version_info >= (3, 13) and "terminfo" not in got["tail"]:
            return False, "3.13's REPL fell back to the basic one, not for want of terminfo: %r" % got["tail"]
        return True, "in a terminal the basic REPL prompts, answers 6 * 7 and exits%s" % (
            " (3.13's _pyrepl needs a terminfo database, which the image does not carry)"
            if sys.version_info >= (3, 13) else "")
    if stdlib_entry() and not from_stdlib_zip(origin):
        return False, "the REPL's _pyrepl came from %s, not the stdlib zip" % origin
    return True, "in a terminal the REPL prompts, answers 6 * 7 and exits; _pyrepl from %s" % origin


ANNOTATIONS_PROBE = r"""
import annotationlib, json
def f(x: Undefined, y: "int" = 1) -> list[Undefined]: pass
forward = annotationlib.get_annotations(f, format=annotationlib.Format.FORWARDREF)
strings = annotationlib.get_annotations(f, format=annotationlib.Format.STRING)
try:
    f.__annotations__
    raised = None
except NameError as e:
    raised = str(e)
print(json.dumps({"forward": sorted(k + ":" + type(v).__name__ for k, v in forward.items()),
                  "strings": strings, "raised": raised, "origin": annotationlib.__spec__.origin}))
"""

TEMPLATES_PROBE = r"""
import json, string.templatelib as tl
name = "dpy"
t = eval('t"hi {name!r:>8} and {1 + 1}"')
print(json.dumps({"template": type(t) is tl.Template, "strings": list(t.strings),
                  "values": [[i.value, i.expression, i.conversion, i.format_spec] for i in t.interpolations],
                  "origin": tl.__spec__.origin}))
"""


@check("annotations")
def annotations():
    # PEP 649/749 (3.14): annotations are evaluated when asked for, and annotationlib
    # (from the stdlib zip) reads them without evaluating an undefined name.
    if sys.version_info < (3, 14):
        return True, "not applicable: annotations are evaluated eagerly before 3.14"
    got = child_json("-c", ANNOTATIONS_PROBE)
    wanted_forward = ["return:GenericAlias", "x:ForwardRef", "y:str"]
    wanted_strings = {"x": "Undefined", "y": "int", "return": "list[Undefined]"}
    problems = []
    if got["forward"] != wanted_forward:
        problems.append("FORWARDREF gave %s" % got["forward"])
    if got["strings"] != wanted_strings:
        problems.append("STRING gave %s" % got["strings"])
    if not got["raised"] or "Undefined" not in got["raised"]:
        problems.append("__annotations__ did not raise NameError for Undefined: %s" % got["raised"])
    if stdlib_entry() and not from_stdlib_zip(got["origin"]):
        problems.append("annotationlib came from %s" % got["origin"])
    if problems:
        return False, "; ".join(problems)
    return True, "deferred annotations: FORWARDREF and STRING read, __annotations__ raises NameError; " \
        "annotationlib from %s" % got["origin"]


@check("template-strings")
def template_strings():
    # PEP 750 (3.14): t-strings make string.templatelib.Template objects.
    if sys.version_info < (3, 14):
        return True, "not applicable: t-strings arrived in 3.14"
    got = child_json("-c", TEMPLATES_PROBE)
    wanted = {"template": True, "strings": ["hi ", " and ", ""],
              "values": [["dpy", "name", "r", ">8"], [2, "1 + 1", None, ""]]}
    wrong = dict((k, got[k]) for k in wanted if got[k] != wanted[k])
    if stdlib_entry() and not from_stdlib_zip(got["origin"]):
        wrong["origin"] = got["origin"]
    if wrong:
        return False, "t\"hi {name!r:>8} and {1 + 1}\" gave %s" % wrong
    return True, "t-strings make Templates with their strings and interpolations; string.templatelib from %s" % (
        got["origin"])


LAZY_PROBE = r"""
import json, sys
source = "lazy import decimal\nlazy from fractions import Fraction\n"
exec(compile(source, "<lazy>", "exec"))
before = ["decimal" in sys.modules, "fractions" in sys.modules]
used = [str(decimal.Decimal("1.5") + 1), str(Fraction(1, 3) * 3)]
after = ["decimal" in sys.modules, "fractions" in sys.modules]
print(json.dumps({"before": before, "used": used, "after": after,
                  "origin": sys.modules["decimal"].__spec__.origin}))
"""

GLOBAL_LAZY_PROBE = r"""
import json, sys
import decimal
print(json.dumps({"imported": "decimal" in sys.modules, "mode": sys.get_lazy_imports(),
                  "used": str(decimal.Decimal(2) / 8), "after": "decimal" in sys.modules}))
"""


@check("lazy-imports")
def lazy_imports():
    # PEP 810 (3.15): `lazy import` binds a name and imports on first use, through the
    # same finders (the stdlib zip's); -X lazy_imports=all makes every import lazy.
    if sys.version_info < (3, 15):
        return True, "not applicable: explicit lazy imports arrived in 3.15"
    got = child_json("-c", LAZY_PROBE)
    wanted = {"before": [False, False], "used": ["2.5", "1"], "after": [True, True]}
    wrong = dict((k, got[k]) for k in wanted if got[k] != wanted[k])
    if stdlib_entry() and not from_stdlib_zip(got["origin"]):
        wrong["origin"] = got["origin"]
    every = child_json("-X", "lazy_imports=all", "-c", GLOBAL_LAZY_PROBE)
    if every["imported"] or every["used"] != "0.25" or not every["after"]:
        wrong["-X lazy_imports=all"] = every
    if wrong:
        return False, "lazy imports went wrong: %s" % wrong
    return True, "`lazy import` and `lazy from` import on first use, from %s; -X lazy_imports=all " \
        "(mode %s) defers a plain import" % (got["origin"], every["mode"])


UTF8_MODE_PROBE = r"""
import json, locale, sys, tempfile
with tempfile.TemporaryFile("w") as f:
    encoding = f.encoding
print(json.dumps([sys.flags.utf8_mode, locale.getpreferredencoding(False), encoding]))
"""


@check("utf8-mode")
def utf8_mode():
    # PEP 686 (3.15): UTF-8 mode is on by default, whatever the locale; PYTHONUTF8=0
    # still turns it off. The image must not turn it off for the user.
    if sys.version_info < (3, 15):
        return True, "not applicable: UTF-8 mode is the default from 3.15 (here %d)" % sys.flags.utf8_mode
    results = {}
    for label, extra in (("image", {}), ("LC_ALL=C", {"LC_ALL": "C"}), ("PYTHONUTF8=0", {"PYTHONUTF8": "0"})):
        env = dict(os.environ)
        env.update(extra)
        results[label] = child_json("-c", UTF8_MODE_PROBE, env=env)
    on = [1, "utf-8", "utf-8"]
    wrong = [label for label in ("image", "LC_ALL=C") if [results[label][0]] + [
        x.lower().replace("_", "-") for x in results[label][1:]] != on]
    if results["PYTHONUTF8=0"][0] != 0:
        wrong.append("PYTHONUTF8=0")
    if wrong:
        return False, "UTF-8 mode is wrong under %s: %s" % (", ".join(wrong), results)
    return True, "UTF-8 mode on by default and under LC_ALL=C (preferred %s, open() %s); off with PYTHONUTF8=0" % (
        results["image"][1], results["image"][2])


def deepest(mode):
    """The deepest recursion (of STACK_DEPTHS[mode]) that ran in a thread; 0 if none."""
    out = python("-c", STACK_PROBE, mode, ",".join(str(d) for d in STACK_DEPTHS[mode]))
    reached = [int(line) for line in out.stdout.split() if line.isdigit()]
    return max(reached or [0])


@check("thread-recursion")
def thread_recursion():
    # Each probe runs in a child: a stack overflow is a SIGSEGV there, a result here.
    # Demanded: what the source reaches (the interpreter binary is the same, so the
    # runtime image must not do worse), and without a survey, 900 plain Python levels,
    # which every supported build passes (3.9/3.10 on musl only with the 1 MiB thread
    # stack the official Alpine images compile in).
    source = SURVEY.get("thread_recursion") or {}
    problems, shown = [], []
    for mode in sorted(STACK_DEPTHS):
        here = deepest(mode)
        there = source.get(mode)
        floor = there if there is not None else (900 if mode == "python" else 0)
        shown.append("%s %d%s" % (mode, here, "" if there is None else " (source %d)" % there))
        if here < floor:
            problems.append("%s recursion in a thread reaches %d, needs %d" % (mode, here, floor))
    if problems:
        return False, "; ".join(problems)
    return True, "deepest recursion in a thread: " + ", ".join(shown)


@check("tls-trust")
def tls_trust():
    import ssl
    paths = ssl.get_default_verify_paths()
    candidates = [paths.cafile, paths.capath, paths.openssl_cafile, paths.openssl_capath]
    present = sorted(set(p for p in candidates if p and os.path.exists(p)))
    if not present:
        return False, "none of the verify paths exists: cafile %s, capath %s" % (
            paths.openssl_cafile, paths.openssl_capath)
    count = ssl.create_default_context().cert_store_stats()["x509_ca"]
    if count <= 0:
        return False, "no CA certificate loaded from %s" % ", ".join(present)
    return True, "%d CA certificates loaded (%s; %s)" % (count, ", ".join(present), ssl.OPENSSL_VERSION)




def owned_files(kind):
    """{package: real paths of the files it owns that are here} from the image's database.
    Directories are not owned files: every package lists /bin or /lib, and on a merged-/usr
    root those are links the runtime image carries too."""
    listed = {}
    if kind == "apk":
        with open(PACKAGE_DBS["apk"]) as f:
            package, directory = None, ""
            for line in f:
                line = line.rstrip("\n")
                if line.startswith("P:"):
                    package = line[2:]
                    listed.setdefault(package, [])
                elif line.startswith("F:"):
                    directory = line[2:]
                elif line.startswith("R:") and package:
                    listed[package].append("/%s/%s" % (directory, line[2:]))
    else:
        with open(PACKAGE_DBS["dpkg"]) as f:
            for line in f:
                if line.startswith("Package:"):
                    listed[line.split(":", 1)[1].strip()] = []
        for listing in glob.glob("/var/lib/dpkg/info/*.list"):
            package = os.path.basename(listing)[:-len(".list")].split(":")[0]
            with open(listing) as f:
                listed.setdefault(package, []).extend(l.rstrip("\n") for l in f if l.strip())
    return dict((package, set(os.path.realpath(p) for p in paths
                              if os.path.lexists(p) and not os.path.isdir(p)))
                for package, paths in listed.items())


def shared_libraries():
    """Real paths of the shared libraries a package could own: what scanners match CVEs
    by. /usr/local (the official images' own build of Python) and site-/dist-packages
    (pip's) belong to no OS package."""
    found = set()
    for top in ("/lib", "/lib64", "/usr/lib", "/usr/lib64"):
        for current, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if d not in ("site-packages", "dist-packages")]
            for name in files:
                path = os.path.join(current, name)
                if re.search(r"\.so(\.|$)", name) and os.path.isfile(path):
                    found.add(os.path.realpath(path))
    return set(p for p in found if not p.startswith("/usr/local/"))


@check("package-db")
def package_db():
    here = next((k for k, p in PACKAGE_DBS.items() if os.path.isfile(p)), None)
    # Without a survey of the source, the image is held to the database it has, if any.
    want = SURVEY.get("package_db") if SURVEY else here
    if want is None:
        if not SURVEY:
            return True, "no package database here, and no survey of the source to ask for one"
        return True, "the source has no package database (%s): none to keep" % (
            "here either" if here is None else "yet %s is here" % PACKAGE_DBS[here])
    if here != want:
        return False, "the source keeps a %s database, this image %s" % (
            want, "has none" if here is None else "a %s one" % here)
    owners = owned_files(want)
    owned = set().union(*owners.values()) if owners else set()
    problems = []
    orphans = sorted(shared_libraries() - owned)
    if orphans:
        problems.append("%d shared libraries no recorded package owns (scanners miss them): %s" % (
            len(orphans), ", ".join(orphans[:8])))
    # A record without a file here makes scanners report a package the image lacks.
    empty = sorted(package for package, files in owners.items() if not files)
    if empty:
        problems.append("%d recorded packages own no file here (scanners report them anyway): %s" % (
            len(empty), ", ".join(empty[:8])))
    if problems:
        return False, "; ".join(problems)
    names = sorted(owners)
    return True, "%s: %d packages, each owning files here, own every shared library outside /usr/local (%s)" % (
        want, len(names), ", ".join(names[:8]) + (" ..." if len(names) > 8 else ""))


@check("utc")
def utc():
    import datetime
    import time
    offset = datetime.datetime.now().astimezone().utcoffset()
    zone = time.strftime("%Z")
    ok = (set(time.tzname) <= UTC_NAMES and zone in UTC_NAMES and time.timezone == 0
          and offset == datetime.timedelta(0))
    return ok, "tzname %s, %%Z %s, offset %s, TZ=%s" % (
        list(time.tzname), zone, offset, os.environ.get("TZ", "(unset)"))


@check("zoneinfo")
def zone_info():
    import datetime
    if SURVEY and not SURVEY.get("zoneinfo_paris"):
        return True, "not demanded: Europe/Paris does not load in the source either"
    import zoneinfo
    zone = zoneinfo.ZoneInfo("Europe/Paris")
    summer = datetime.datetime(2024, 7, 1, tzinfo=zone).utcoffset()
    winter = datetime.datetime(2024, 1, 1, tzinfo=zone).utcoffset()
    ok = summer == datetime.timedelta(hours=2) and winter == datetime.timedelta(hours=1)
    return ok, "Europe/Paris: summer %s, winter %s (TZPATH %s)" % (summer, winter, list(zoneinfo.TZPATH))


def carried(soname):
    """Where a library file named like the source's find_library answer sits here."""
    name = os.path.basename(soname)
    dirs = ["/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib"]
    dirs += glob.glob("/lib/*-linux-*") + glob.glob("/usr/lib/*-linux-*")
    libdir = sysconfig.get_config_var("LIBDIR")
    if libdir:
        dirs.append(libdir)
    return [os.path.join(d, name) for d in dirs if os.path.exists(os.path.join(d, name))]


@check("find-library")
def find_library():
    import ctypes.util
    source = SURVEY.get("find_library") or {}
    want_c = EXPECT.get("expect_find_library_c")
    problems, missed, found, absent = [], [], [], []
    for lib in sorted(set(source) | {"c"}):
        here = ctypes.util.find_library(lib)
        there = source.get(lib)
        if here:
            found.append("%s=%s" % (lib, here))
        if lib == "c" and want_c is not None:
            # An explicit expectation wins: glibc finds libc.so.6, musl finds nothing.
            if bool(here) != bool(want_c):
                problems.append("find_library('c') is %r, expected %s" % (here, "a name" if want_c else "None"))
            continue
        if there and not here:
            # Parity covers what the image carries: a library the distill rightly left
            # out (nothing here links it) need not be found.
            files = carried(there)
            if files:
                missed.append("%s (%s, at %s)" % (lib, there, files[0]))
            else:
                absent.append(lib)
    if missed:
        problems.append("found in the source and carried here, but not found: " + "; ".join(missed))
    if problems:
        return False, "; ".join(problems)
    detail = ", ".join(found) or "nothing found, as in the source"
    if absent:
        detail += "; not carried: %s" % ", ".join(absent)
    return True, detail


@check("utf8")
def utf8():
    text = "d\u00e9j\u00e0 vu \u2713 \u65e5\u672c"
    fs = sys.getfilesystemencoding()
    # Bytes, not text: the child's stdout must carry exactly the UTF-8 encoding.
    out = python("-c", "print(%s)" % ascii(text), universal_newlines=False)
    printed = out.stdout == (text + "\n").encode("utf-8")
    import locale
    preferred = locale.getpreferredencoding(False)
    source_preferred = (SURVEY.get("encoding") or {}).get("preferred")
    parity = not source_preferred or not is_utf8(source_preferred) or is_utf8(preferred)
    ok = is_utf8(fs) and printed and parity
    return ok, "filesystem %s, preferred %s%s, stdout %s" % (
        fs, preferred, " (source %s)" % source_preferred if source_preferred else "",
        "prints UTF-8" if printed else "failed: exit %d %s" % (
            out.returncode, tail(out.stderr.decode("utf-8", "replace"))))


@check("locale")
def ctype_locale():
    # The source coerces a bare C locale to a UTF-8 one (PEP 538) when that locale's
    # files exist; C code (and locale.getencoding()) then sees UTF-8. Same here.
    import locale
    here = locale.setlocale(locale.LC_CTYPE)
    source = (SURVEY.get("encoding") or {}).get("ctype_locale")
    if source is None:
        return True, "LC_CTYPE is %s (no survey to compare with)" % here
    if here != source:
        return False, "LC_CTYPE is %s here but %s in the source: the runtime image lacks the %s locale" % (
            here, source, source)
    return True, "LC_CTYPE is %s, as in the source" % here


# Counts the code objects unmarshalled for one fresh import from the zip (whoever
# unmarshals them: zipimport or the hook; the index and the top-level names, data,
# are not code).
READS_PROBE = r'''
import marshal, sys, types
reads = []
original = marshal.loads
def counting(*args):
    value = original(*args)
    if isinstance(value, types.CodeType):
        reads.append(value)
    return value
marshal.loads = counting
import colorsys
print(len(reads), type(colorsys.__loader__).__name__)
'''


@check("zip-reads-once")
def zip_reads_once():
    # CPython's zipimporter unmarshals a module twice per import (get_filename, then
    # get_code); _dpy_zipimport, installed by the encodings package, makes it once,
    # with or without site (-S), in isolated mode (-I) as well.
    if sys.version_info < (3, 10):
        return True, "not applicable: 3.9's zipimporter loads through load_module"
    results = []
    for flags in ([], ["-S"], ["-I"]):
        out = python(*(flags + ["-c", READS_PROBE]))
        answer = out.stdout.split()
        if out.returncode != 0 or len(answer) != 2:
            return False, "the probe failed with %s (exit %d): %s" % (
                " ".join(flags) or "no flags", out.returncode, tail(out.stderr))
        if answer[0] != "1":
            return False, "importing colorsys %s unmarshalled %s code objects (loader %s), not 1" % (
                "with " + " ".join(flags) if flags else "", answer[0], answer[1])
        results.append("%s: 1 read" % (" ".join(flags) or "default"))
    return True, "importing colorsys from the zip: " + ", ".join(results)


STARTUP_PROBE = r'''
import sys, zipimport
stdlib = sys.argv[1]
cache = zipimport._zip_directory_cache
# Read at start only if the start imported from it, or on 3.9.
imported = any((getattr(m, "__file__", None) or "").startswith(stdlib + "/") for m in list(sys.modules.values()))
before = stdlib in cache and not imported and sys.version_info >= (3, 10)
# encodings imports dpy's hook at the first import from the zip (3.9: at start).
hooked = "_dpy_zipimport" in sys.modules
import colorsys
hook = sys.modules.get("_dpy_zipimport")
print(before, stdlib in sys.path, stdlib in cache, getattr(hook, "indexed", False), hooked)
'''


@check("startup-zip")
def startup_zip():
    # A bare start reads no zip's central directory (zipimport says "found N names" for
    # each directory it reads, with -v): what it imports is on disk in the stdlib
    # directory, each file read once by the import system's own finder; dpy's hook is
    # imported at the first import from the zip, not at start (3.9: at start). The stdlib
    # zip's directory comes from the index at that first import, and must be what
    # zipimport itself reads from that zip.
    if not STDLIB_ZIP:
        return True, "not applicable: this image has one stdlib zip"
    home = sysconfig.get_paths()["stdlib"]
    counts = []
    for flags in ([], ["-S"], ["-I"]):
        label = " ".join(flags) or "no flags"
        out = python(*(flags + ["-v", "-c", "pass"]))
        found = re.findall(r"zipimport: found (\d+) names in '([^']+)'", out.stderr)
        if out.returncode != 0 or found:
            return False, "a bare start (%s) read the directories of %s (exit %d)" % (
                label, found, out.returncode)
        # The files it unmarshalled code from (frozen and built-in modules are none).
        files = re.findall(r"^# code object from '([^']+)'$", out.stderr, re.M)
        elsewhere = [f for f in files if not f.startswith(home + "/")]
        if not files or elsewhere:
            return False, "a bare start (%s) read code from %d files, %s outside %s" % (
                label, len(files), elsewhere[:3], home)
        counts.append(len(files))
        probe = python(*(flags + ["-c", STARTUP_PROBE, STDLIB_ZIP]))
        answer = probe.stdout.split()
        if answer[:4] != ["False", "True", "True", "True"]:
            return False, "after a start (%s) the stdlib zip is read %s, on sys.path %s, read after " \
                "an import %s, from its index %s: %s" % (label, *(answer + ["?"] * 4)[:4], tail(probe.stderr))
        if answer[4:] != [str(sys.version_info < (3, 10))]:
            return False, "a bare start (%s) imported dpy's hook _dpy_zipimport: it waits for the " \
                "first import from the stdlib zip" % label
    import zipimport
    parsed = zipimport._read_directory(STDLIB_ZIP)
    indexed = zipimport._zip_directory_cache.get(STDLIB_ZIP)
    if parsed != indexed:
        # A name one side lacks differs even where the other holds None (3.14's implicit
        # directories): .get() alone would count it as equal.
        indexed = indexed or {}
        differ = sorted(k for k in set(parsed) | set(indexed)
                        if k not in parsed or k not in indexed or parsed[k] != indexed[k])
        return False, "the index differs from zipimport's own reading of %s in %d names, e.g. %s" % (
            STDLIB_ZIP, len(differ), differ[:3])
    return True, "a bare start (default, -S, -I) reads no zip directory and %s files, all in %s%s; the " \
        "index of %s, loaded at the first stdlib import, equals zipimport's reading (%d names)" % (
            "/".join(str(c) for c in counts), home,
            "" if sys.version_info < (3, 10) else ", and imports no hook", STDLIB_ZIP, len(parsed))


# Packages whose resources and submodules are compared with the stdlib zip's listing:
# encodings (split between the stdlib directory and the zip) and a few that applications
# read or walk.
RESOURCE_PACKAGES = ["encodings", "email", "importlib", "json", "xml", "http", "zoneinfo"]


@check("stdlib-resources")
def stdlib_resources():
    # importlib.resources and pkgutil see each stdlib package whole, encodings too, whose
    # start-up part is also on disk in the stdlib directory.
    if sys.version_info < (3, 10):
        return True, "not checked on 3.9 (no importlib.readers)"
    stdlib = stdlib_entry()
    if stdlib is None:
        return False, "no stdlib zip on sys.path"
    import importlib
    import importlib.resources
    import pkgutil
    import zipfile
    with zipfile.ZipFile(stdlib) as z:
        names = z.namelist()
    tops = {n.split("/", 1)[0] if "/" in n else n[:-4] for n in names if "/" in n or n.endswith(".pyc")}
    walked = {m.name for m in pkgutil.iter_modules()}
    if not tops <= walked:
        return False, "pkgutil.iter_modules() misses %s of the stdlib zip" % sorted(tops - walked)[:5]
    checked = []
    for package in RESOURCE_PACKAGES:
        prefix = package + "/"
        inside = [n[len(prefix):] for n in names if n.startswith(prefix) and len(n) > len(prefix)]
        entries = sorted({n.split("/", 1)[0] for n in inside})
        if not entries or stripped(package):
            continue
        try:
            module = importlib.import_module(package)
        except ImportError:
            continue  # left out: left-out-modules says whether it may be
        listed = sorted(p.name for p in importlib.resources.files(package).iterdir())
        if listed != entries:
            return False, "importlib.resources.files(%r) lists %d entries, the stdlib zip %d (missing %s)" % (
                package, len(listed), len(entries), sorted(set(entries) - set(listed))[:3])
        modules = {n[:-4] for n in inside if "/" not in n and n.endswith(".pyc") and n != "__init__.pyc"}
        modules |= {n.split("/")[0] for n in inside if n.count("/") == 1 and n.endswith("/__init__.pyc")}
        found = {m.name for m in pkgutil.iter_modules(module.__path__)}
        if found != modules:
            return False, "pkgutil.iter_modules(%s.__path__) finds %d modules, the stdlib zip has %d (missing %s)" % (
                package, len(found), len(modules), sorted(modules - found)[:3])
        checked.append("%s (%d)" % (package, len(entries)))
    return True, "pkgutil lists every top-level name of the stdlib zip; importlib.resources and " \
        "pkgutil list the whole of " + ", ".join(checked)


@check("left-out-modules")
def left_out_modules():
    # A profile's own additions (slim: readline, _dbm, ...) fail to import with an
    # ImportError that names the profile; the rest of the stdlib is stdlib-imports' job.
    announced = EXPECT.get("announced") or []
    if not announced:
        return True, "profile %s leaves out nothing beyond its base" % EXPECT.get("profile", "standard")
    # Those the source has (from the survey), and the plain names of the list, which a
    # given Python may lack altogether (crypt is gone in 3.13).
    in_source = set()
    for name in (SURVEY.get("stdlib_modules") or []):
        if "." not in name and any(fnmatch.fnmatch(name, p) for p in announced):
            in_source.add(name)
    candidates = in_source | set(p for p in announced if p.isidentifier())
    failed, died = import_each(candidates)
    if died:
        return False, died
    marker = left_out_marker()
    imported = sorted(candidates - set(failed))
    stubbed = sorted(n for n, e in failed.items() if marker in e)
    unclear = sorted(n for n, e in failed.items() if marker not in e)
    if imported:
        return False, "left out by profile %s but importable: %s" % (EXPECT.get("profile"), ", ".join(imported))
    missing_stub = sorted(in_source.intersection(unclear))
    if missing_stub:
        return False, "importable in the source, but failing here without naming the profile: %s (%s)" % (
            ", ".join(missing_stub), tail(failed[missing_stub[0]]))
    detail = "%d modules fail with the profile's ImportError (%s)" % (len(stubbed), ", ".join(stubbed))
    if unclear:
        detail += "; not in this Python: %s" % ", ".join(unclear)
    return True, detail


SHELL = EXPECT.get("shell") or "dash"
SHELL_NAMES = ("sh", "dash", "bash", "ash", "busybox")
# The debug variant: the runtime plus a shell and tools, whatever --shell said.
DEBUG = EXPECT.get("variant") == "debug"
HAS_SHELL = SHELL != "none" or DEBUG


@check("shell")
def shell():
    if not HAS_SHELL:
        return no_shell()
    out = subprocess.run("echo $((1+2))", shell=True, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, timeout=60)
    status = os.system("exit 3")
    code = os.waitstatus_to_exitcode(status) if status >= 0 else status
    sh = os.path.realpath("/bin/sh")
    problems = []
    if out.stdout.strip() != "3":
        problems.append("shell=True printed %r (%s)" % (out.stdout.strip(), tail(out.stderr, 100)))
    if code != 3:
        problems.append("os.system('exit 3') returned %d" % code)
    if SHELL == "dash" and os.path.basename(sh) != "dash":
        problems.append("/bin/sh is %s, not dash" % sh)
    if problems:
        return False, "; ".join(problems)
    return True, "/bin/sh -> %s; shell=True and os.system work" % sh


def no_shell():
    """--shell none: no file named like a shell anywhere, and what needs /bin/sh fails
    as it does on any system without one."""
    problems = []
    found = []
    for top, dirs, files in os.walk("/"):
        if top in ("/proc", "/sys", "/dev"):
            dirs[:] = []
            continue
        found.extend(os.path.join(top, n) for n in files + dirs if n in SHELL_NAMES)
    if found:
        problems.append("shells in the image: %s" % ", ".join(sorted(found)[:5]))
    try:
        subprocess.run("true", shell=True, stdin=subprocess.DEVNULL, timeout=60)
        problems.append("subprocess.run(shell=True) ran")
    except FileNotFoundError:
        pass
    # glibc's system() reports the failed exec as exit status 127; musl's returns -1.
    status = os.system("exit 3")
    code = os.waitstatus_to_exitcode(status) if status >= 0 else status
    if code not in (127, -1):
        problems.append("os.system('exit 3') returned %d, not 127 (glibc) or -1 (musl)" % code)
    if problems:
        return False, "; ".join(problems)
    return True, "no shell: no file named %s; shell=True raises FileNotFoundError, os.system returns %d" % (
        "/".join(SHELL_NAMES), code)


@check("venv")
def venv():
    # A fresh directory: re-runs and concurrent runs must not collide, and venv accepts
    # an existing empty directory.
    target = tempfile.mkdtemp(prefix="dpy-venv-", dir="/tmp")
    try:
        made = python("-m", "venv", target)
        if made.returncode != 0:
            return False, "python -m venv exited %d: %s" % (made.returncode, tail(made.stderr))
        run = subprocess.run([os.path.join(target, "bin", "python"), "-c",
                              "import sys; print(sys.prefix)"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True, timeout=120)
        if run.returncode != 0 or run.stdout.strip() != target:
            return False, "the venv's python printed %r (exit %d): %s" % (
                run.stdout.strip(), run.returncode, tail(run.stderr))
        # venv copies its scripts with os.walk, which sees nothing inside a zip.
        activate = os.path.join(target, "bin", "activate")
        if not os.path.isfile(activate):
            return False, "the venv has no bin/activate (venv's scripts/ directory is not on disk)"
        if not HAS_SHELL:
            return True, "python -m venv %s works: its python has sys.prefix %s, bin/activate is there (no shell to source it)" % (
                target, run.stdout.strip())
        sourced = subprocess.run(["/bin/sh", "-c", '. "$1/bin/activate" && echo "$VIRTUAL_ENV"', "sh", target],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
        if sourced.stdout.strip() != target:
            return False, "sourcing bin/activate in /bin/sh set VIRTUAL_ENV to %r: %s" % (
                sourced.stdout.strip(), tail(sourced.stderr))
        return True, "python -m venv %s works: its python has sys.prefix %s, bin/activate sets VIRTUAL_ENV" % (
            target, run.stdout.strip())
    finally:
        shutil.rmtree(target, ignore_errors=True)


# The debug variant's tools: these must run as the image's user; busybox brings the rest.
DEBUG_REQUIRED = [["ls", "/"], ["cat", "/etc/os-release"], ["env"], ["id"]]
DEBUG_BUSYBOX = [["ps"], ["find", "/etc", "-maxdepth", "1"], ["grep", "-c", "nonroot", "/etc/passwd"],
                 ["wget", "--help"], ["head", "-n", "1", "/etc/os-release"]]


@check("debug-tools")
def debug_tools():
    if not DEBUG:
        return True, "not the debug variant: no tools expected (no-forbidden-binaries checks their absence)"
    busybox = shutil.which("busybox")
    wanted = DEBUG_REQUIRED + (DEBUG_BUSYBOX if busybox else [])
    failed, ran = [], []
    for argv in wanted:
        try:
            run = subprocess.run(["sh", "-c", '"$@" >/dev/null 2>&1', "sh"] + argv,
                                 stdin=subprocess.DEVNULL, timeout=60)
            code = run.returncode
        except (OSError, subprocess.TimeoutExpired) as e:
            code = str(e)
        # busybox's wget --help exits 1 after printing its usage.
        if code == 0 or (argv[:2] == ["wget", "--help"] and code == 1):
            ran.append(argv[0])
        else:
            failed.append("%s (%s)" % (" ".join(argv), code))
    if failed:
        return False, "from sh, these failed: %s" % ", ".join(failed)
    return True, "sh runs %s%s" % (", ".join(ran), " (busybox %s)" % busybox if busybox else " (the source's own tools)")


@check("no-pip")
def no_pip():
    try:
        import pip
    except ModuleNotFoundError as e:
        return True, "import pip: ModuleNotFoundError: %s" % e
    except ImportError as e:
        return False, "pip is there but broken: ImportError: %s" % e
    return False, "pip imports from %s" % getattr(pip, "__file__", "?")


@check("ensurepip-noop")
def ensurepip_noop():
    run = python("-m", "ensurepip")
    if run.returncode != 0:
        return False, "python -m ensurepip exited %d: %s" % (
            run.returncode, tail(run.stderr) or tail(run.stdout) or "(no output)")
    if "pip" not in run.stderr.lower():
        return False, "python -m ensurepip explains nothing about pip on stderr: %r" % tail(run.stderr)
    # The real ensurepip exits 0 too when it installs pip (its log on stdout): the stub
    # writes only its explanation, and pip is still absent afterwards.
    after = python("-c", "import importlib.util; print(importlib.util.find_spec('pip') is None)")
    if run.stdout.strip() or after.stdout.strip() != "True":
        return False, "python -m ensurepip is not the no-op: stdout %r, pip absent afterwards: %s" % (
            tail(run.stdout, 100), after.stdout.strip() or tail(after.stderr, 100))
    # Tools import every stdlib module: the stub and its __main__ must do nothing then.
    quiet = python("-c", "import ensurepip, ensurepip.__main__; print('alive')")
    if quiet.returncode != 0 or quiet.stdout != "alive\n" or quiet.stderr:
        return False, "importing ensurepip.__main__ has effects: exit %d, stdout %r, stderr %r" % (
            quiet.returncode, tail(quiet.stdout, 100), tail(quiet.stderr, 100))
    return True, "python -m ensurepip exits 0 and says on stderr: %s; importing it is silent" % (
        run.stderr.strip().splitlines()[0][:120])


@check("no-forbidden-binaries")
def no_forbidden_binaries():
    dirs = []
    for d in [p for p in os.environ.get("PATH", "").split(os.pathsep) if p] + BIN_DIRS:
        if os.path.isdir(d) and os.path.realpath(d) not in [os.path.realpath(x) for x in dirs]:
            dirs.append(d)
    # lexists: a dangling link named bash is still a left-over worth reporting.
    found = [os.path.join(d, n) for d in dirs for n in FORBIDDEN if os.path.lexists(os.path.join(d, n))]
    # Package managers under any name they ship: apt-get, apt-cache, dpkg-query, apk.static...
    manager = re.compile(r"^(apk|apt|dpkg)([.-].*)?$")
    for d in dirs:
        for current, subdirs, files in os.walk(d):
            found += [os.path.join(current, f) for f in files + subdirs if manager.match(f)]
    found = sorted(set(found))
    if found:
        return False, "%d present: %s%s" % (len(found), ", ".join(found[:12]), " ..." if len(found) > 12 else "")
    return True, "none of %s in %s" % (", ".join(FORBIDDEN), ", ".join(dirs))


@check("user")
def user():
    import grp
    import pwd
    uid, gid = os.getuid(), os.getgid()
    problems = []
    if uid != UID or uid == 0:
        problems.append("uid %d, expected %d (non-zero)" % (uid, UID))
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = None
    if name != "nonroot":
        problems.append("uid %d is named %r in /etc/passwd, not 'nonroot'" % (uid, name))
    try:
        group = grp.getgrgid(gid).gr_name
    except KeyError:
        group = None
        problems.append("gid %d has no /etc/group entry" % gid)
    if gid != EXPECT.get("gid", UID):
        problems.append("gid %d, expected %d" % (gid, EXPECT.get("gid", UID)))
    mode = stat.S_IMODE(os.stat("/tmp").st_mode)
    if mode != 0o1777:
        problems.append("/tmp is mode %o, not 1777" % mode)
    writable = []
    for d in (os.environ.get("HOME"), "/tmp"):
        if not d:
            continue
        try:
            with tempfile.NamedTemporaryFile(dir=d):
                writable.append(d)
        except OSError:
            pass
    if not writable:
        problems.append("neither HOME (%s) nor /tmp is writable" % os.environ.get("HOME"))
    if problems:
        return False, "; ".join(problems)
    return True, "uid %d (%s), gid %d (%s), /tmp 1777, writable: %s" % (
        uid, name, gid, group, ", ".join(writable))


@check("env")
def env():
    wanted = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}
    wrong = dict((k, os.environ.get(k)) for k, v in wanted.items() if os.environ.get(k) != v)
    if wrong:
        return False, "unset or wrong: %s" % wrong
    if not sys.flags.dont_write_bytecode:
        return False, "PYTHONDONTWRITEBYTECODE is set but the interpreter writes bytecode"
    return True, "PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1"


def main():
    if EXPECT_ERROR:
        FAILED.append("expect")
        sys.stdout.write(json.dumps({"check": "expect", "ok": False, "detail": EXPECT_ERROR}) + "\n")
    for name, function in CHECKS:
        try:
            ok, detail = function()
        except BaseException as e:  # an exception in one check is that check's failure
            if isinstance(e, KeyboardInterrupt):
                raise
            ok, detail = False, "%s: %s" % (type(e).__name__, e)
        if not ok:
            FAILED.append(name)
        # ensure_ascii (the default): the line survives any stdout encoding.
        sys.stdout.write(json.dumps({"check": name, "ok": bool(ok), "detail": str(detail)}) + "\n")
        sys.stdout.flush()
    sys.exit(1 if FAILED else 0)


main()
