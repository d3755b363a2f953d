"""Run by tests/zip_reads.rs with each Python on the machine: builds a small zip of
modules compiled by that interpreter (with _dpy_zipimport among them), imports the hook
from it, then a module and a package's submodule, counting the code objects zipimport
unmarshals. Then compiles the interpreter's own encodings package with gather.py's
compile_stdlib_file and compares it with a plain compile. Prints one line: version,
reads after the hook, loader classes, traceback, encodings."""
import os, py_compile, sys, tempfile, zipfile
hook_source, gather_py = sys.argv[1:3]
work = tempfile.mkdtemp()
archive = os.path.join(work, "lib.zip")
files = {"_dpy_zipimport.py": open(hook_source).read(),
         "plain.py": "VALUE = 1\n",
         "pkg/__init__.py": "",
         "pkg/sub.py": "def f():\n    raise ValueError('x')\n"}
with zipfile.ZipFile(archive, "w") as z:
    for name, text in files.items():
        src = os.path.join(work, name)
        os.makedirs(os.path.dirname(src), exist_ok=True)
        open(src, "w").write(text)
        cfile = src + "c"
        py_compile.compile(src, cfile=cfile, dfile=archive + "/" + name, doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        z.write(cfile, name + "c")
sys.path.insert(0, archive)
import zipimport
reads = []
original = zipimport._unmarshal_code
def counting(*args):
    reads.append(args[1])
    return original(*args)
zipimport._unmarshal_code = counting
import _dpy_zipimport
before = len(reads)
import plain, pkg.sub
import traceback
try:
    pkg.sub.f()
except ValueError:
    tb = traceback.format_exc()
# The hooked encodings: same docstring and line numbers, the hook import first.
import importlib.util, marshal, encodings
sys.path.insert(0, os.path.dirname(gather_py))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from gather import compile_stdlib_file
out = os.path.join(work, "encodings.pyc")
compile_stdlib_file(encodings.__file__, out, "/x/encodings/__init__.py", "encodings/__init__.py")
hooked = marshal.loads(open(out, "rb").read()[16:])
plain_code = compile(open(encodings.__file__, "rb").read(), "/x/encodings/__init__.py", "exec", dont_inherit=True)
def lines(code):
    return sorted((c.co_name, c.co_firstlineno) for c in code.co_consts if hasattr(c, "co_firstlineno"))
namespace = {"__name__": "encodings", "__package__": "encodings", "__path__": encodings.__path__}
exec(hooked, namespace)
same = (lines(hooked) == lines(plain_code) and namespace.get("__doc__") == encodings.__doc__
        and "_dpy_zipimport" in hooked.co_names)
encodings_ok = "encodings-ok" if same else "encodings-differ:%s" % lines(hooked)[:3]
print("%d.%d" % sys.version_info[:2], len(reads) - before, type(plain.__loader__).__name__,
      type(pkg.sub.__loader__).__name__, "traceback-ok" if archive + "/pkg/sub.py" in tb else tb, encodings_ok)
