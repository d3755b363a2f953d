"""probes: the code that survey.py (in the source image) and checks.py (in the runtime
image) both run, kept in this one file so that "imports in the source" and "imports in
the runtime image" mean the same thing. dpy sends it ahead of each script (the scripts
are `concat!`ed in src/conformance/mod.rs), so both define these names from here.
Pure stdlib, Python 3.9-3.15, glibc and musl.
"""

# The import loop. It runs as
# plain code with `names` (the modules to import, in order) defined, and leaves
# `failed` = {name: "ExceptionType: message"}.
# - One process, sorted order: the same order on both sides, so a module that only
#   imports after (or fails because of) another one behaves alike in source and runtime.
# - Output is silenced at the file-descriptor level, not only sys.stdout: some modules
#   print on import (this, __hello__) and C code may write to fd 1 directly; the JSON
#   on stdout must stay the only thing there.
# - BaseException: a SystemExit or KeyboardInterrupt raised by an import is that
#   module's failure. SIGALRM bounds a module that blocks (30 s each).
# - Warnings are ignored: deprecated modules (crypt, nis, ...) warn on import.
# - Only the stdlib may answer: sys.path keeps the zip, the stdlib dir and lib-dynload
#   (no cwd, no site-packages), and third-party meta path finders (setuptools'
#   _distutils_hack turns `import distutils` into setuptools' copy) are removed.
IMPORT_LOOP = r'''
import os, signal, sys, sysconfig, warnings

def _stdlib_only():
    paths = sysconfig.get_paths()
    dirs = set(os.path.realpath(paths[k]) for k in ("stdlib", "platstdlib"))
    # pythonXY.zip, and dpy's pythonXY-stdlib.zip beside it (pythonXYt... on a
    # free-threaded build).
    zip_stem = "python%d%d%s" % (sys.version_info[0], sys.version_info[1],
                                 sysconfig.get_config_var("ABI_THREAD") or "")
    def keep(entry):
        if not entry:
            return False
        real = os.path.realpath(entry)
        base = os.path.basename(entry)
        return (real in dirs or base == "lib-dynload"
                or (base.startswith(zip_stem) and base.endswith(".zip")))
    sys.path[:] = [p for p in sys.path if keep(p)]
    def standard(finder):
        owner = finder if isinstance(finder, type) else type(finder)
        return owner.__module__.split(".")[0] in ("_frozen_importlib", "_frozen_importlib_external",
                                                  "importlib", "zipimport")
    sys.meta_path[:] = [f for f in sys.meta_path if standard(f)]

class _Hung(Exception):
    pass

def _alarm(signum, frame):
    raise _Hung("the import took longer than 30 s")

_stdlib_only()
warnings.simplefilter("ignore")
failed = {}
sys.stdout.flush(); sys.stderr.flush()
_saved = (os.dup(1), os.dup(2))
_null = os.open(os.devnull, os.O_WRONLY)
_streams = (sys.stdout, sys.stderr)
try:
    os.dup2(_null, 1); os.dup2(_null, 2)
    _sink = open(os.devnull, "w")
    sys.stdout = sys.stderr = _sink
    _previous = signal.signal(signal.SIGALRM, _alarm)
    for name in names:
        signal.alarm(30)
        try:
            __import__(name)
        except BaseException as e:
            failed[name] = ("%s: %s" % (type(e).__name__, e))[:300]
        finally:
            signal.alarm(0)
    signal.signal(signal.SIGALRM, _previous)
finally:
    sys.stdout, sys.stderr = _streams
    os.dup2(_saved[0], 1); os.dup2(_saved[1], 2)
    for _fd in _saved + (_null,):
        os.close(_fd)
'''

# Thread-stack probe: recursion inside a thread, in a child
# process so that a stack overflow (SIGSEGV) is a measured result, not a crash.
# "python": a plain Python function with a few locals; since 3.11 such calls use no C
# stack, before that every level does. "through_c": every level goes through a C
# function (sorted's key callback), as real code does via callbacks, json, copy, re.
# Prints each depth reached, so the last line is the deepest that worked.
STACK_PROBE = r'''
import sys, threading
mode, depths = sys.argv[1], [int(d) for d in sys.argv[2].split(",")]
sys.setrecursionlimit(max(depths) * 3 + 200)
def python(n):
    a, b, c = n, n * 2, str(n)
    return 0 if n == 0 else 1 + python(n - 1)
def through_c(n):
    a, b, c = n, n * 2, str(n)
    return 0 if n == 0 else 1 + sorted([n - 1], key=through_c)[0]
function = python if mode == "python" else through_c
for depth in depths:
    result = []
    worker = threading.Thread(target=lambda: result.append(function(depth)))
    worker.start()
    worker.join()
    if result != [depth]:
        break
    print(depth, flush=True)
'''
# Measured: 900 levels through C run in a glibc thread (8 MiB stack), 200 in a musl one
# with the official Alpine build's -DTHREAD_STACK_SIZE=0x100000 (1 MiB); with musl's own
# 128 KiB default (a CPython built without that flag) ~30. Hence the low first rungs.
STACK_DEPTHS = {"python": [900, 5000], "through_c": [10, 25, 50, 100, 200, 400, 900]}

# Where each package manager keeps its installed database, in the order the gather stage
# looks for them (templates/context/dpy_gather/pkgdb.py, which runs in another image).
PACKAGE_DBS = {"dpkg": "/var/lib/dpkg/status", "apk": "/lib/apk/db/installed"}
