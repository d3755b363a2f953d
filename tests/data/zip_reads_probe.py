"""Run by tests/zip_reads.rs with each Python on the machine: lays out a small stdlib as
dpy does, compiled by that interpreter: _dpy_zipimport byte-compiled in a directory
(the stdlib directory) beside the zip's index and top-level names, and the modules in a
zip. Installs the hook for that zip, then imports a module and a package's submodule,
counting the code objects zipimport unmarshals. Then compiles the interpreter's own
encodings package with gather.py's compile_stdlib_file and compares it with a plain
compile. Prints one line: version, code objects unmarshalled after the hook, of them
unmarshalled by zipimport itself, loader classes, traceback, index, encodings."""
import marshal, os, py_compile, sys, tempfile, zipfile, zipimport
hook_source, gather_py = sys.argv[1:3]
work = tempfile.mkdtemp()
home = os.path.join(work, "lib")
os.makedirs(home)
archive = os.path.join(work, "lib-stdlib.zip")


def compile_to(text, name, cfile):
    src = os.path.join(work, "src", name)
    os.makedirs(os.path.dirname(src), exist_ok=True)
    with open(src, "w") as f:
        f.write(text)
    py_compile.compile(src, cfile=cfile, dfile=archive + "/" + name, doraise=True,
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)


with open(hook_source) as f:
    compile_to(f.read(), "_dpy_zipimport.py", os.path.join(home, "_dpy_zipimport.pyc"))
files = {"plain.py": "VALUE = 1\n",
         "pkg/__init__.py": "",
         "pkg/sub.py": "def f():\n    raise ValueError('x')\n"}
with zipfile.ZipFile(archive, "w") as z:
    for name, text in files.items():
        cfile = os.path.join(work, "pyc", name + "c")
        os.makedirs(os.path.dirname(cfile), exist_ok=True)
        compile_to(text, name, cfile)
        z.write(cfile, name + "c")
# What dpy's distill writes beside the hook (src/distill/stdlib.rs), made here from
# zipimport's own reading of the zip.
with open(os.path.join(home, "_dpy_stdlib.index"), "wb") as f:
    f.write(marshal.dumps({"archive": archive, "size": os.path.getsize(archive),
                           "files": zipimport._read_directory(archive)}))
with open(os.path.join(home, "_dpy_stdlib.tops"), "wb") as f:
    f.write(marshal.dumps(("pkg", "plain")))
sys.path.insert(0, home)
# The code objects unmarshalled, by zipimport or by the hook (the index and the
# top-level names are data, not code).
import types
reads = []
original = marshal.loads
def counting(*args):
    value = original(*args)
    if isinstance(value, types.CodeType):
        reads.append(value)
    return value
marshal.loads = counting
# The reads zipimport unmarshals itself, from a copy of each .pyc's bytes: the hook reads
# dpy's own kind of .pyc without it.
copies = []
original_unmarshal = zipimport._unmarshal_code
def copying(*args):
    copies.append(args[1])
    return original_unmarshal(*args)
zipimport._unmarshal_code = copying
import _dpy_zipimport
_dpy_zipimport.install(archive)
marshal.loads = counting
before = len(reads)
import plain, pkg.sub
read = len(reads) - before
import traceback
try:
    pkg.sub.f()
except ValueError:
    tb = traceback.format_exc()
try:
    import not_in_the_zip  # the top-level names answer it: no directory is read for it
except ImportError:
    pass
index = "indexed" if _dpy_zipimport.indexed else "not-indexed"
# The hooked encodings: same docstring and line numbers, the hook's call first, with the
# stdlib zip its code records.
import importlib.util, encodings
sys.path.insert(0, os.path.dirname(gather_py))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from gather import compile_stdlib_file
out = os.path.join(work, "encodings.pyc")
compile_stdlib_file(encodings.__file__, out, "/x/encodings/__init__.py", "encodings/__init__.py")
with open(out, "rb") as f:
    hooked = marshal.loads(f.read()[16:])
with open(encodings.__file__, "rb") as f:
    plain_code = compile(f.read(), "/x/encodings/__init__.py", "exec", dont_inherit=True)
def lines(code):
    return sorted((c.co_name, c.co_firstlineno) for c in code.co_consts if hasattr(c, "co_firstlineno"))
namespace = {"__name__": "encodings", "__package__": "encodings", "__path__": list(encodings.__path__),
             "__file__": encodings.__file__}
exec(hooked, namespace)
same = (lines(hooked) == lines(plain_code) and namespace.get("__doc__") == encodings.__doc__
        and "_dpy_zipimport" in hooked.co_names and "/x" in sys.path)
encodings_ok = "encodings-ok" if same else "encodings-differ:%s" % lines(hooked)[:3]
print("%d.%d" % sys.version_info[:2], read, len(copies), type(plain.__loader__).__name__,
      type(pkg.sub.__loader__).__name__, "traceback-ok" if archive + "/pkg/sub.py" in tb else tb,
      index, encodings_ok)
