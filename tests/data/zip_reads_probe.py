"""Run by tests/zip_reads.rs with each Python on the machine: lays out a small stdlib as
dpy does, compiled by that interpreter: _dpy_zipimport byte-compiled in a directory
(the stdlib directory) beside the zip's index and top-level names, and the modules in a
zip. Runs the interpreter's own encodings package as gather.py's compile_stdlib_file
compiles it for that zip, then asks for a name the zip lacks and imports a module and a
package's submodule from the zip, counting the code objects unmarshalled. Prints one
line: version, code objects of the zip's modules unmarshalled, of them by zipimport
itself, loader classes, traceback, index, encodings, whether the hook waited for the
first import from the zip."""
import marshal, os, py_compile, sys, tempfile, types, zipfile, zipimport
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

# encodings as dpy compiles it for this zip, run in a namespace laid out as in an image:
# its file in the stdlib directory, which is on sys.path.
import encodings
sys.path.insert(0, os.path.dirname(gather_py))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from gather import compile_stdlib_file
out = os.path.join(work, "encodings.pyc")
compile_stdlib_file(encodings.__file__, out, archive + "/encodings/__init__.py", "encodings/__init__.py")
with open(out, "rb") as f:
    hooked = marshal.loads(f.read()[16:])
with open(encodings.__file__, "rb") as f:
    plain_code = compile(f.read(), archive + "/encodings/__init__.py", "exec", dont_inherit=True)
sys.path.insert(0, home)
namespace = {"__name__": "encodings", "__package__": "encodings", "__path__": [home + "/encodings"],
             "__file__": home + "/encodings/__init__.pyc", "__spec__": encodings.__spec__}
exec(hooked, namespace)


def lines(code):
    # The functions encodings defines, by name and first line (the inserted code's own,
    # deleted once run, aside).
    return sorted((c.co_name, c.co_firstlineno) for c in code.co_consts
                  if hasattr(c, "co_firstlineno") and not c.co_name.startswith("_dpy"))


same = (lines(hooked) == lines(plain_code) and namespace.get("__doc__") == encodings.__doc__
        and not any(name.startswith("_dpy") for name in namespace)
        and sys.path.index(archive) == sys.path.index(home) + 1
        and namespace["__path__"] == [home + "/encodings", archive + "/encodings"])
encodings_ok = "encodings-ok" if same else "encodings-differ:%s" % lines(hooked)[:3]

# A name the zip lacks is answered by its top-level names alone: the hook is not imported
# for it, the directory not read (3.9 installs the hook at start).
try:
    import not_in_the_zip
except ImportError:
    pass
waited = "_dpy_zipimport" not in sys.modules and archive not in zipimport._zip_directory_cache
waited = "waited" if waited else "installed-at-start"

# The code objects of the zip's modules unmarshalled, by zipimport or by the hook.
ours = {archive + "/" + name for name in files}
reads = []
original = marshal.loads
def counting(*args):
    value = original(*args)
    if isinstance(value, types.CodeType) and value.co_filename in ours:
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
import plain, pkg.sub
import traceback
try:
    pkg.sub.f()
except ValueError:
    tb = traceback.format_exc()
import _dpy_zipimport
index = "indexed" if _dpy_zipimport.indexed else "not-indexed"
print("%d.%d" % sys.version_info[:2], len(reads), len(copies), type(plain.__loader__).__name__,
      type(pkg.sub.__loader__).__name__, "traceback-ok" if archive + "/pkg/sub.py" in tb else tb,
      index, encodings_ok, waited)
