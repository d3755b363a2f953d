"""survey: what the SOURCE image can do, so `dpy test` can demand the same of the runtime image.

Runs inside the source image as `python3 -S -c <probes.py + this file>`; env DPY_STRIP is
a JSON list of fnmatch patterns on top-level stdlib names. Prints exactly ONE JSON object
on stdout; diagnostics go to stderr.

Pure stdlib, Python 3.9-3.15, glibc and musl. src/conformance/README.md says what each
key is for. IMPORT_LOOP (probes.py) is the loop checks.py runs too, so that "imports in
the source" and "imports in the runtime image" mean the same thing.
"""

import fnmatch
import json
import os
import platform
import subprocess
import sys
import sysconfig


# Libraries applications look up with ctypes.util.find_library (gunicorn: "c", ...).
LIBRARIES = ["c", "m", "ssl", "crypto", "z", "bz2", "lzma", "ffi", "sqlite3", "uuid",
             "ncursesw", "readline", "gdbm", "expat", "mpdec"]

# Never imported, whatever the strip list says: their import has effects outside this
# process (antigravity opens a web browser) or starts a program (idlelib.idle runs IDLE's
# main() at import time). Every `*.__main__` is skipped too (see stdlib_names).
NEVER_IMPORT = {"antigravity", "idlelib.idle"}

# IMPORT_LOOP, STACK_PROBE and STACK_DEPTHS come from probes.py, sent ahead of this file.


def deepest(mode):
    """The deepest recursion (of STACK_DEPTHS[mode]) that ran in a thread; 0 if none."""
    out = subprocess.run([sys.executable, "-c", STACK_PROBE, mode,
                          ",".join(str(d) for d in STACK_DEPTHS[mode])],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    reached = [int(line) for line in out.stdout.split() if line.isdigit()]
    return max(reached or [0])


def stripped(name, patterns):
    top = name.split(".", 1)[0]
    return any(fnmatch.fnmatch(top, p) for p in patterns)


def stdlib_names(patterns):
    """Every stdlib module and submodule on disk, plus the built-in ones.

    Not pkgutil.walk_packages itself: it imports each package to find its submodules,
    which would run stripped or unsafe packages before the guarded loop. This is the
    same walk (pkgutil.iter_modules, recursively) without importing: stdlib packages
    do not rewrite their __path__. Stripped top-level names are not even walked.
    """
    import pkgutil
    paths = sysconfig.get_paths()
    roots = [paths["stdlib"]]
    if os.path.realpath(paths["platstdlib"]) != os.path.realpath(paths["stdlib"]):
        roots.append(paths["platstdlib"])
    roots += [p for p in sys.path if os.path.basename(p) == "lib-dynload" and os.path.isdir(p)]
    names = set(n for n in sys.builtin_module_names if not stripped(n, patterns))

    def walk(directory, prefix):
        for info in pkgutil.iter_modules([directory]):
            name = prefix + info.name
            if name.endswith("__main__") or name in NEVER_IMPORT:
                # Importing pkg.__main__ runs the package's program (ensurepip installs
                # pip, venv makes a venv, asyncio starts a REPL).
                continue
            if not prefix and stripped(name, patterns):
                continue
            names.add(name)
            if info.ispkg:
                walk(os.path.join(directory, info.name), name + ".")

    for root in roots:
        walk(root, "")
    return sorted(names)


def section(errors, key, function, default=None):
    """Each part of the survey is isolated: a failure is recorded, the rest still runs."""
    try:
        return function()
    except Exception as e:
        errors[key] = "%s: %s" % (type(e).__name__, e)
        return default


def find_libraries():
    import ctypes.util
    found = {}
    for lib in LIBRARIES:
        try:
            found[lib] = ctypes.util.find_library(lib)
        except Exception:
            found[lib] = None
    return found


def paris():
    import datetime
    import zoneinfo
    zone = zoneinfo.ZoneInfo("Europe/Paris")
    # The summer offset proves real data was read, not merely that the name resolved.
    return datetime.datetime(2024, 7, 1, tzinfo=zone).utcoffset() == datetime.timedelta(hours=2)


def encodings():
    import locale
    return {"filesystem": sys.getfilesystemencoding(),
            "preferred": locale.getpreferredencoding(False),
            "utf8_mode": bool(sys.flags.utf8_mode),
            # What a bare C locale became at start (PEP 538 coercion), e.g. C.UTF-8.
            "ctype_locale": locale.setlocale(locale.LC_CTYPE)}


def main():
    errors = {}
    patterns = json.loads(os.environ.get("DPY_STRIP") or "[]")
    # Facts first, before hundreds of imports change the process.
    result = {
        "python_version": platform.python_version(),
        "executable": sys.executable,
        "prefix": sys.prefix,
        "stdlib_dir": sysconfig.get_paths()["stdlib"],
        "machine": platform.machine(),
        "libc": list(platform.libc_ver()),
        "encoding": section(errors, "encoding", encodings),
        "find_library": section(errors, "find_library", find_libraries, {}),
        "zoneinfo_paris": bool(section(errors, "zoneinfo_paris", paris, False)),
        "package_db": next((k for k, p in PACKAGE_DBS.items() if os.path.isfile(p)), None),
        "thread_recursion": {mode: section(errors, "thread_recursion", lambda: deepest(mode), 0)
                             for mode in STACK_DEPTHS},
    }
    names = section(errors, "stdlib_modules", lambda: stdlib_names(patterns), [])
    scope = {"names": names}
    section(errors, "import_loop", lambda: exec(IMPORT_LOOP, scope))
    failed = scope.get("failed")
    if failed is None:  # the loop itself broke: claim nothing
        failed = dict((n, "not tried: the import loop failed") for n in names)
    result["stdlib_modules"] = [n for n in names if n not in failed]
    # Present on disk but not importable in the source: not demanded of the runtime
    # image; listed so a reader sees what the source itself cannot do.
    result["not_importable"] = failed
    result["strip"] = patterns
    result["errors"] = errors
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    sys.stdout.flush()


main()
