"""Serves the stdlib from its zip with no work a start does not need (installed by dpy).

A bare start imports no stdlib module from a zip, nor this module. What it imports (the
encodings modules it loads) is byte-compiled on disk in the stdlib directory, which
sys.path names before the zip, and the import system's own finder reads those files once
each. The whole stdlib is in pythonXY-stdlib.zip. zipimport reads a zip's central
directory in pure Python, a few microseconds per entry, and CPython's zipimporter
unmarshals each module twice (below), so a start that imported from a zip paid for both.

encodings, the first package every interpreter imports, puts the stdlib zip on sys.path
after the stdlib directory and leaves it to a finder of its own, which answers names
outside the stdlib's top-level names (site's sitecustomize, at every start) without
reading anything of the zip (dpy_gather/compile.py). The first stdlib module asked for
imports this module and calls install(), which gives the zip StdlibZipImporter. The zip's
directory comes from an index dpy wrote beside this module (_dpy_stdlib.index:
zipimport's own `{name: (path, compress, data_size, file_size, file_offset, time, date,
crc)}`), loaded with one marshal.loads into zipimport's cache. An index that does not fit
(another size, another shape) is ignored: zipimport then reads the directory itself.

It also reads each module once instead of twice. CPython's zipimporter finds a module's
file name by loading the module: get_filename, which spec_from_loader calls while the
import system builds the module's spec, reads, decompresses and unmarshals the code only
to return its path, and get_code then does all of it again (python/cpython#141276).
StdlibZipImporter keeps the code object from the first read for the get_code call that
follows it.

All of this holds with -S, -I and in virtual environments: encodings is imported whether
or not site runs. encodings is the one package both on disk and in the zip, whole only in
the zip: it takes the zip's importer as its loader, so its resources are read there
(importlib.resources.files). Were this module missing or broken, encodings gives the zip
to zipimport's own importer: imports are slower then, never broken.
"""

import _frozen_importlib_external  # importlib's own, set up before any path import
import marshal
import sys
import zipimport

__all__ = ["StdlibZipImporter", "install"]

# The index, a file beside this module in the stdlib directory (src/distill/stdlib.rs
# writes it).
INDEX = "_dpy_stdlib.index"

# Whether the index gave the directory (the conformance check `startup-zip` asks).
indexed = False


def _read(path):
    # The builtin _io: 3.9 installs this module from encodings, before io is set up.
    import _io
    with _io.FileIO(path) as f:
        return f.readall()


def _load(home, archive):
    """Puts the stdlib zip's directory in zipimport's cache: the index, when it fits (made
    for this zip, by its path and size, with entries of the shape of zipimport's own: a
    path and seven numbers, since 3.8); else zipimport's own reading, as without dpy."""
    global indexed
    cached = zipimport._zip_directory_cache
    if archive in cached:
        return
    try:
        index = marshal.loads(_read(home + "/" + INDEX))
        import posix  # built in: os is not imported yet on every version
        files = index["files"]
        entry = next(iter(files.values()))
        fits = (
            index["archive"] == archive
            and posix.stat(archive).st_size == index["size"]
            and len(entry) == 8
            and type(entry[0]) is str
            and all(type(value) is int for value in entry[1:])
        )
    except Exception:
        fits = False
    if fits:
        cached[archive] = files
        indexed = True
        return
    try:
        cached[archive] = zipimport._read_directory(archive)
    except Exception:
        pass


# zipimport's module search order, (suffix, is bytecode, is package), and its reading of
# one entry's bytes. Where a version has neither, _module_code is zipimport's own.
_SEARCH = getattr(zipimport, "_zip_searchorder", None)
_GET_DATA = getattr(zipimport, "_get_data", None)
# An unchecked hash-based .pyc's flags (PEP 552): how dpy compiles the stdlib.
_UNCHECKED = b"\x01\x00\x00\x00"
_MAGIC = _frozen_importlib_external.MAGIC_NUMBER
_CODE = type(_read.__code__)


def _module_code(importer, fullname):
    """zipimport's (code, is package, path) for `fullname`, unmarshalled from a view of
    the .pyc's bytes. zipimport unmarshals a copy of them less their 16-byte header: on
    musl, whose allocator maps each large buffer afresh, that copy cost the heavy imports
    of `scripts/bench` about 800 page faults. Anything but dpy's own kind of .pyc goes
    to zipimport."""
    if _SEARCH is not None and _GET_DATA is not None:
        path = importer.prefix + fullname.rpartition(".")[2]
        files = importer._files
        for suffix, isbytecode, ispackage in _SEARCH:
            entry = files.get(path + suffix)
            if entry is None:
                continue
            if isbytecode:
                data = _GET_DATA(importer.archive, entry)
                if data[:4] == _MAGIC and data[4:8] == _UNCHECKED:
                    code = marshal.loads(memoryview(data)[16:])
                    if isinstance(code, _CODE):
                        return code, ispackage, entry[0]
            break
    return zipimport._get_module_code(importer, fullname)


class StdlibZipImporter(zipimport.zipimporter):
    """The stdlib zip's importer, at its root or in a package (`prefix`), made without
    reading the zip: the first module asked for loads the directory (_load). It decodes a
    module once per import, not twice, without copying it (_module_code)."""

    # (module name, code object) read by get_filename, awaiting get_code. One slot:
    # import locks make the two calls adjacent; anything else only misses the cache.
    _pending = None

    def __init__(self, archive, home, prefix=""):
        self.archive = archive
        self.prefix = prefix
        self._home = home

    def get_filename(self, fullname):
        code, _, path = _module_code(self, fullname)
        self._pending = (fullname, code)
        return path

    def get_code(self, fullname):
        pending, self._pending = self._pending, None
        if pending is not None and pending[0] == fullname:
            return pending[1]
        return _module_code(self, fullname)[0]

    # zipimport reads the directory through _get_files() (3.13 on) or _files (before).
    def _get_files(self):
        _load(self._home, self.archive)
        return super()._get_files()

    @property
    def _files(self):
        _load(self._home, self.archive)
        return zipimport._zip_directory_cache.get(self.archive, {})

    @_files.setter
    def _files(self, files):
        zipimport._zip_directory_cache[self.archive] = files


def install(stdlib):
    """Serves the stdlib zip `stdlib`, on sys.path after the stdlib directory (this
    module's): its importer in sys.path_importer_cache and a path hook for the paths
    inside it in place of zipimport's. Returns the importer and the hook."""
    home = __spec__.origin.rpartition("/")[0]
    if sys.version_info < (3, 10):
        # 3.9's zipimporter loads through load_module and has no find_spec: the index now.
        _load(home, stdlib)
        root, hook = zipimport.zipimporter(stdlib), zipimport.zipimporter
    else:
        root = StdlibZipImporter(stdlib, home)

        def hook(path):
            if path == stdlib:
                return root
            if path.startswith(stdlib + "/"):
                return StdlibZipImporter(stdlib, home, path[len(stdlib) + 1:].rstrip("/") + "/")
            return zipimport.zipimporter(path)

        hook.__doc__ = "zipimporter, reading modules of %s once" % stdlib
        hooks = sys.path_hooks
        for at, each in enumerate(hooks):
            if each is zipimport.zipimporter:
                hooks[at] = hook
    sys.path_importer_cache[stdlib] = root
    return root, hook
