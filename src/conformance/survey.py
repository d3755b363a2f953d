"""survey: what the SOURCE image can do, for `dpy test` to demand of the runtime image.

Runs in the source image as `python3 -c <this file>` with DPY_STRIP (a JSON list of
fnmatch patterns on top-level stdlib names). Prints one JSON object on stdout.

Every stdlib module is imported in this one process, output silenced: importing is
what tools that walk the stdlib do, so a module that cannot bear it is worth knowing
about. `__main__` submodules are skipped: importing them runs their program.
"""

import contextlib
import fnmatch
import io
import json
import os
import pkgutil
import platform
import sys
import sysconfig

# Importing these has effects beyond the process (a browser opens) or hangs.
NEVER_IMPORT = {"antigravity", "this", "idlelib.idle", "turtledemo.__main__"}

LIBRARIES = ["c", "m", "ssl", "crypto", "z", "bz2", "lzma", "ffi", "sqlite3", "uuid",
             "ncursesw", "readline", "gdbm", "expat", "mpdec"]


def stripped(name, patterns):
    top = name.split(".", 1)[0]
    return any(fnmatch.fnmatch(top, p) for p in patterns)


def stdlib_names(patterns):
    stdlib = sysconfig.get_paths()["stdlib"]
    dynload = [p for p in sys.path if p.endswith("lib-dynload")]
    names = set(sys.builtin_module_names)
    for info in pkgutil.iter_modules([stdlib] + dynload):
        if stripped(info.name, patterns) or info.name in ("site-packages", "dist-packages"):
            continue
        names.add(info.name)
        if info.ispkg:
            path = [os.path.join(info.module_finder.path, info.name)]
            for sub in pkgutil.walk_packages(path, info.name + ".", onerror=lambda _: None):
                names.add(sub.name)
    return sorted(n for n in names if not n.endswith(".__main__") and ".tests" not in n
                  and ".test." not in n and not n.endswith(".test") and n not in NEVER_IMPORT)


def importable(names):
    ok = []
    sink = io.StringIO()
    for name in names:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            try:
                __import__(name)
            except BaseException:  # SystemExit and friends count as "does not import"
                continue
        ok.append(name)
    return ok


def main():
    patterns = json.loads(os.environ.get("DPY_STRIP", "[]"))
    names = stdlib_names(patterns)
    modules = importable(names)
    import ctypes.util
    found = {}
    for lib in LIBRARIES:
        try:
            found[lib] = ctypes.util.find_library(lib)
        except Exception:
            found[lib] = None
    try:
        import zoneinfo
        zoneinfo.ZoneInfo("Europe/Paris")
        paris = True
    except Exception:
        paris = False
    result = {
        "python_version": platform.python_version(),
        "stdlib_modules": modules,
        "not_importable": sorted(set(names) - set(modules)),
        "find_library": found,
        "zoneinfo_paris": paris,
        "encoding": {"filesystem": sys.getfilesystemencoding(),
                     "preferred": __import__("locale").getpreferredencoding(False)},
        "machine": platform.machine(),
        "libc": list(platform.libc_ver()),
    }
    sys.__stdout__.write(json.dumps(result) + "\n")


main()
