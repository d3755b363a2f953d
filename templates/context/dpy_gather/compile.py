"""Byte-compiling the stdlib. Also imported by dpy's compile-once step (src/bytecode.rs),
which needs nothing else of the package."""

import ast
import importlib.util
import os
import py_compile

# The first package every interpreter imports. It is on disk in the stdlib directory,
# with the rest of what a bare start imports (images/zip.toml); its compiled form gains
# one guarded call of _dpy_zipimport.install (templates/context/_dpy_zipimport.py), placed
# before its own imports so that every later module is read from the stdlib zip once.
HOOKED_MODULE = "encodings/__init__.py"
HOOK_MODULE = "_dpy_zipimport"

# The whole stdlib lives in `pythonXY-stdlib.zip`, beside the `pythonXY.zip` that
# getpath puts on sys.path, which dpy does not write: a bare start imports from the
# stdlib directory, not from a zip. Every module's code names its path in the stdlib zip,
# where every module is.
STDLIB_ZIP_SUFFIX = "-stdlib.zip"

# The hook puts the stdlib zip on sys.path with its directory read from an index. Should
# the hook be missing or broken, encodings does the first part itself, after the stdlib
# directory (its own parent), and takes the stdlib zip's importer as its loader for its
# resources: slower (zipimport then reads the whole directory), never broken. The stdlib
# zip's path is the one the module's code records.
HOOK = """try:
    from %s import install as _dpy_install
    _dpy_install(%%r)
    del _dpy_install
except Exception:
    try:
        import sys
        _dpy_stdlib = %%r
        if _dpy_stdlib not in sys.path:
            _dpy_home = __file__.rpartition("/")[0].rpartition("/")[0]
            sys.path.insert(sys.path.index(_dpy_home) + 1 if _dpy_home in sys.path else len(sys.path),
                            _dpy_stdlib)
            del _dpy_home
        if _dpy_stdlib + "/encodings" not in __path__:
            __path__.append(_dpy_stdlib + "/encodings")
        # The package is whole only in the stdlib zip: importlib.resources reads it there.
        import zipimport
        __loader__ = __spec__.loader = zipimport.zipimporter(_dpy_stdlib)
        del _dpy_stdlib
    except Exception:
        pass
""" % HOOK_MODULE


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
    hook = ast.parse(HOOK % (stdlib, stdlib)).body
    for statement in hook:
        for node in ast.walk(statement):
            if hasattr(node, "lineno"):
                node.lineno = node.end_lineno = line
    tree.body[index:index] = hook
    write_pyc(compile(tree, dfile, "exec", dont_inherit=True), data, cfile)
