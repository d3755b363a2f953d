"""Byte-compiling the stdlib. Also imported by dpy's compile-once step (src/bytecode.rs),
which needs nothing else of the package."""

import ast
import importlib.util
import json
import os
import py_compile

# The first package every interpreter imports. It is on disk in the stdlib directory,
# with the rest of what a bare start imports (images/zip.toml); its compiled form gains
# the code below, placed before its own imports so that every later module is read from
# the stdlib zip once: it serves the stdlib zip lazily, importing _dpy_zipimport
# (templates/context/_dpy_zipimport.py) at the first import from the zip, not at start.
HOOKED_MODULE = "encodings/__init__.py"
HOOK_MODULE = "_dpy_zipimport"

# The whole stdlib lives in `pythonXY-stdlib.zip`, beside the `pythonXY.zip` that
# getpath puts on sys.path, which dpy does not write: a bare start imports from the
# stdlib directory, not from a zip. Every module's code names its path in the stdlib zip,
# where every module is.
STDLIB_ZIP_SUFFIX = "-stdlib.zip"

# The stdlib's top-level names, a file in the stdlib directory (src/distill/stdlib.rs
# writes it, by this name).
TOPS = "_dpy_stdlib.tops"

# Run by encodings at every start, so it does no more than a start needs. It puts the
# stdlib zip (the path encodings' code records) on sys.path after the stdlib directory
# (encodings' grandparent), completes encodings' __path__ with the zip, and leaves the
# zip to a finder that answers names outside the stdlib's top-level names alone (site's
# sitecustomize and usercustomize, at every start). The first stdlib name, or the first
# path inside the zip, imports _dpy_zipimport and hands the zip to its importer and path
# hook. Importing and installing that module at start cost about 2% of a start's
# instructions (callgrind, images/zip.toml); a class costs about 0.1 M instructions to
# make, so the finder is a module object holding a function. Should _dpy_zipimport be
# missing or broken, zipimport's own importer takes the zip: slower (it reads the whole
# directory), never broken. 3.9's zipimporter has no find_spec: there the hook is
# installed at start.
HOOK = """try:
    def _dpy_serve(stdlib, home):
        import sys
        if stdlib not in sys.path:
            sys.path.insert(sys.path.index(home) + 1 if home in sys.path else len(sys.path), stdlib)
        if stdlib + "/encodings" not in __path__:
            __path__.append(stdlib + "/encodings")
        import _thread, zipimport
        served = {}
        # Another thread waits for the hook; this one, importing it, does not search the zip.
        serving = _thread.RLock()

        def serve():
            with serving:
                if not served:
                    served["root"] = None
                    hooks = sys.path_hooks
                    if path_hook in hooks:
                        hooks[hooks.index(path_hook)] = zipimport.zipimporter
                    try:
                        from %s import install
                        root, served["hook"] = install(stdlib)
                    except Exception:
                        root = sys.path_importer_cache[stdlib] = zipimport.zipimporter(stdlib)
                    # encodings is whole only in the zip: importlib.resources reads it there.
                    encodings = sys.modules["encodings"]
                    encodings.__loader__ = encodings.__spec__.loader = served["root"] = root
            return served

        tops = []

        def find_spec(fullname, target=None):
            if not tops:
                try:
                    import _io, marshal
                    with _io.FileIO(home + "/%s") as f:
                        tops.append(frozenset(marshal.loads(f.readall())))
                except Exception:
                    tops.append(None)
            if tops[0] is not None and fullname.partition(".")[0] not in tops[0]:
                return None
            root = serve()["root"]
            return None if root is None else root.find_spec(fullname, target)

        def path_hook(path):
            if path == stdlib or path.startswith(stdlib + "/"):
                hook = serve().get("hook")
                if hook is not None:
                    return hook(path)
            return zipimport.zipimporter(path)

        if sys.version_info < (3, 10):
            serve()
            return
        finder = type(sys)("the stdlib zip, until its first import")
        finder.find_spec = find_spec
        sys.path_importer_cache[stdlib] = finder
        hooks = sys.path_hooks
        if zipimport.zipimporter in hooks:
            hooks[hooks.index(zipimport.zipimporter)] = path_hook
    _dpy_serve(%%r, __file__.rpartition("/")[0].rpartition("/")[0])
    del _dpy_serve
except Exception:
    pass
""" % (HOOK_MODULE, TOPS)


def stdlib_zip(zip_path):
    """The stdlib zip, named after the zip getpath puts on sys.path, beside it."""
    return zip_path[:-4] + STDLIB_ZIP_SUFFIX


def compile_pyc(source, cfile, dfile):
    """Compiles the file `source` to a sourceless, unchecked-hash .pyc at `cfile` whose
    code names `dfile` (its path in the zip): nothing ever stats a source for it."""
    py_compile.compile(source, cfile=cfile, dfile=dfile, doraise=True,
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)


def write_pyc(code, source_bytes, cfile):
    """The same kind of .pyc as compile_pyc's, for a code object compiled here."""
    from importlib import _bootstrap_external
    pyc = _bootstrap_external._code_to_hash_pyc(code, importlib.util.source_hash(source_bytes), False)
    directory = os.path.dirname(cfile)
    if directory:
        os.makedirs(directory, exist_ok=True)
    with open(cfile, "wb") as f:
        f.write(pyc)


def recorded_name(relative, stdlib, zip_path, on_disk):
    """The file name a stdlib module's code object records, so tracebacks and __file__ are
    true: its path inside the zip, or its own path for a package kept on disk."""
    top = relative.split("/", 1)[0]
    return "%s/%s" % (stdlib if top in on_disk else zip_path, relative)


def compile_stdlib_file(source, cfile, dfile, relative):
    """Compiles one stdlib source with compile_pyc, the hooked module with its hook. Also
    run by dpy's compile-once step (src/bytecode.rs), so that bytecode is the same
    whichever platform made it."""
    if os.path.normpath(relative) != os.path.normpath(HOOKED_MODULE):
        compile_pyc(source, cfile, dfile)
        return
    with open(source, "rb") as f:
        data = f.read()
    tree = ast.parse(data, dfile)
    body = tree.body
    index = 0
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str):
        index = 1  # keep the docstring first: it is the module's __doc__
    while index < len(body) and isinstance(body[index], ast.ImportFrom) and body[index].module == "__future__":
        index += 1
    # Every node of the hook takes the line of the statement it precedes, so no line
    # number of the module's own code moves (tracebacks stay true to the source).
    line = body[index].lineno if index < len(body) else 1
    # dfile is <stdlib zip>/encodings/__init__.py.
    stdlib = dfile[:-len("/" + HOOKED_MODULE)]
    hook = ast.parse(HOOK % stdlib).body
    for statement in hook:
        for node in ast.walk(statement):
            if hasattr(node, "lineno"):
                node.lineno = node.end_lineno = line
    tree.body[index:index] = hook
    write_pyc(compile(tree, dfile, "exec", dont_inherit=True), data, cfile)


# What compiling one module may raise for a source that does not compile.
NOT_COMPILING = (py_compile.PyCompileError, SyntaxError, UnicodeDecodeError)


def compile_all(jobs, workers=None):
    """Compiles each job, `(source, cfile, dfile, relative)` for compile_stdlib_file, on
    as many processes as this container has CPUs (the stdlib is the slowest part of the
    gather, and was compiled on one of them); returns {job index: why it does not
    compile}. The bytecode does not depend on which process wrote it."""
    if workers is None:
        try:
            workers = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            workers = os.cpu_count() or 1
    workers = max(1, min(workers, 8, len(jobs) // 32))
    children = []
    for worker in range(1, workers):
        read_end, write_end = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read_end)
            os.close(write_end)
            break
        if pid == 0:  # the child: its share, its failures as JSON on the pipe
            status = 1
            try:
                os.close(read_end)
                failed = _compile_share(jobs, worker, workers)
                with os.fdopen(write_end, "w") as pipe:
                    json.dump(failed, pipe)
                status = 0
            finally:
                os._exit(status)
        os.close(write_end)
        children.append((worker, pid, read_end))
    # The parent takes the shares of the children it could not start, too.
    started = set(worker for worker, _, _ in children)
    failed = {}
    for worker in range(workers):
        if worker not in started:
            failed.update(_compile_share(jobs, worker, workers))
    for worker, pid, read_end in children:
        with os.fdopen(read_end) as pipe:
            answer = pipe.read()
        _, status = os.waitpid(pid, 0)
        if status != 0:
            raise RuntimeError("a compiling process of the gather failed (wait status %d)" % status)
        failed.update((int(i), why) for i, why in json.loads(answer).items())
    return failed


def _compile_share(jobs, worker, workers):
    """Compiles every `workers`-th job from `worker` on: {index: why it failed}."""
    failed = {}
    for index in range(worker, len(jobs), workers):
        try:
            compile_stdlib_file(*jobs[index])
        except NOT_COMPILING as e:
            failed[index] = str(e).splitlines()[-1] if str(e) else type(e).__name__
    return failed
