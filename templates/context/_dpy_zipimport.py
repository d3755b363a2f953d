"""Serves the stdlib from its zips with no work a start does not need (installed by dpy).

The zip sys.path names first (pythonXY.zip) holds only what a bare start imports: the
encodings modules it loads and this module. The whole stdlib is in pythonXY-stdlib.zip
beside it. zipimport reads a zip's central directory in pure Python, a few microseconds
per entry, so a start that parsed the whole stdlib's directory paid for hundreds of
entries it never used. Instead this module loads that directory from an index dpy wrote
into the first zip (_dpy_stdlib.index: zipimport's own `{name: (path, compress,
data_size, file_size, file_offset, time, date, crc)}`) with one marshal.loads, hands it
to zipimport's cache, and puts the stdlib zip on sys.path after the first one. It loads
that index only when a stdlib module is first asked for: until then the stdlib's
top-level names (_dpy_stdlib.tops) answer the searches every start makes (site's
sitecustomize), so `-c pass` reads nothing of the stdlib zip. An index that does not
fit (another size, another shape) is ignored: zipimport then reads the directory itself.

It also reads each module once instead of twice. CPython's zipimporter finds a module's
file name by loading the module: get_filename, which spec_from_loader calls while the
import system builds the module's spec, reads, decompresses and unmarshals the code only
to return its path, and get_code then does all of it again (python/cpython#141276).
StdlibZipImporter keeps the code object from the first read for the get_code call that
follows it.

The stdlib's encodings package, the first package every interpreter imports from the
zip, imports this module, so all of this holds with -S, -I and in virtual environments.
encodings is the one package in both zips, whole only in the stdlib zip: this module
gives it a loader that reads its resources there (importlib.resources.files). Were it
missing or broken, encodings puts the stdlib zip on sys.path itself: imports
are slower then, never broken.
"""

import marshal
import sys
import zipimport

__all__ = ["StdlibZipImporter", "install"]

# The names of the index and of the stdlib's top-level names in the first zip
# (src/distill/stdlib.rs writes them).
INDEX = "_dpy_stdlib.index"
TOPS = "_dpy_stdlib.tops"

# Set by install(): the stdlib zip's path, and what loads its index.
_stdlib = None


class StdlibZipImporter(zipimport.zipimporter):
    """A zipimporter that decodes a module once per import."""

    # (module name, code object) read by get_filename, awaiting get_code. One slot:
    # import locks make the two calls adjacent; anything else only misses the cache.
    _pending = None

    def get_filename(self, fullname):
        code, _, path = zipimport._get_module_code(self, fullname)
        self._pending = (fullname, code)
        return path

    def get_code(self, fullname):
        pending, self._pending = self._pending, None
        if pending is not None and pending[0] == fullname:
            return pending[1]
        return super().get_code(fullname)

    def get_resource_reader(self, fullname):
        # encodings is in both zips, whole only in the stdlib zip: its files are read there.
        if fullname == "encodings" and _stdlib is not None and self.archive != _stdlib[0]:
            _stdlib[1]()
            return zipimport.zipimporter(_stdlib[0]).get_resource_reader(fullname)
        return super().get_resource_reader(fullname)


def _index(first, loader, archive):
    """Hands zipimport the stdlib zip's directory from the index, when the index fits:
    the zip's size, and the shape of zipimport's own entries (those of the first zip)."""
    cached = zipimport._zip_directory_cache
    if archive in cached:
        return
    try:
        index = marshal.loads(loader.get_data(first + "/" + INDEX))
        import posix  # built in: os is not imported yet on every version
        files = index["files"]
        sample = next(iter(cached.get(first, {}).values()), None)
        entry = next(iter(files.values()), None)
        fits = (
            index["archive"] == archive
            and posix.stat(archive).st_size == index["size"]
            and sample is not None
            and entry is not None
            and len(sample) == len(entry)
            and all(type(a) is type(b) for a, b in zip(sample, entry))
        )
    except Exception:
        return
    if fits:
        cached.setdefault(archive, files)


class LazyStdlibZip(StdlibZipImporter):
    """The stdlib zip's root importer: a name that is no top-level module of the stdlib
    (site's sitecustomize, an application's own modules) is answered without reading a
    directory; the first stdlib module asked for loads the index."""

    def __init__(self, archive, tops, load):
        self.archive = archive
        self.prefix = ""
        self._tops = tops
        self._load = load

    def find_spec(self, fullname, target=None):
        if fullname.partition(".")[0] not in self._tops:
            return None
        self._load()
        return super().find_spec(fullname, target)

    # zipimport reads the directory through _get_files() (3.13 on) or _files (before).
    def _get_files(self):
        self._load()
        return super()._get_files()

    @property
    def _files(self):
        self._load()
        return zipimport._zip_directory_cache.get(self.archive, {})

    @_files.setter
    def _files(self, files):
        zipimport._zip_directory_cache[self.archive] = files


def install(archive=None):
    """Puts the stdlib zip on sys.path after `archive` (default: the zip this module came
    from), and serves both zips and the packages in them."""
    loader = getattr(__spec__, "loader", None)
    if archive is None:
        archive = getattr(loader, "archive", None)
        if not archive:
            return
    stdlib = archive[:-4] + "-stdlib.zip"
    if stdlib not in sys.path:
        at = sys.path.index(archive) + 1 if archive in sys.path else len(sys.path)
        sys.path.insert(at, stdlib)
    # encodings, importing this module, is the one package split between the two zips.
    encodings = sys.modules.get("encodings")
    path = getattr(encodings, "__path__", None)
    if isinstance(path, list) and stdlib + "/encodings" not in path:
        path.append(stdlib + "/encodings")

    def load():
        _index(archive, loader, stdlib)
        # No index, or one that does not fit: zipimport's own reading, as without dpy.
        cached = zipimport._zip_directory_cache
        if stdlib not in cached:
            try:
                cached[stdlib] = zipimport._read_directory(stdlib)
            except Exception:
                pass

    global _stdlib
    _stdlib = (stdlib, load)

    def serves(path):
        return path == archive or path.startswith(archive + "/")

    spec = getattr(encodings, "__spec__", None)
    origin = getattr(spec, "origin", None)
    if type(getattr(spec, "loader", None)) is zipimport.zipimporter and isinstance(origin, str) \
            and serves(origin):
        encodings.__loader__ = spec.loader = StdlibZipImporter(spec.loader.archive)

    # 3.9's zipimporter loads through load_module and has no find_spec: the index now.
    if sys.version_info < (3, 10):
        load()
        return
    try:
        tops = frozenset(marshal.loads(loader.get_data(archive + "/" + TOPS)))
    except Exception:
        tops = None

    def path_hook(path):
        if path == stdlib and tops is not None:
            return LazyStdlibZip(stdlib, tops, load)
        if path == stdlib or path.startswith(stdlib + "/"):
            load()
            return StdlibZipImporter(path)
        if serves(path):
            return StdlibZipImporter(path)
        return zipimport.zipimporter(path)

    path_hook.__doc__ = "zipimporter, reading modules of %s and %s once" % (archive, stdlib)
    hooks = sys.path_hooks
    for index, hook in enumerate(hooks):
        if hook is zipimport.zipimporter:
            hooks[index] = path_hook
    cache = sys.path_importer_cache
    for path, importer in list(cache.items()):
        if type(importer) is zipimport.zipimporter and serves(path):
            cache[path] = StdlibZipImporter(path)


install()
