"""Serves the stdlib from its zips with no work a start does not need (installed by dpy).

The zip sys.path names first (pythonXY.zip) holds only what a bare start imports: the
encodings modules it loads and this module. The whole stdlib is in pythonXY-stdlib.zip
beside it. zipimport reads a zip's central directory in pure Python, a few microseconds
per entry, so a start that parsed the whole stdlib's directory paid for hundreds of
entries it never used. Instead this module loads that directory from an index dpy wrote
into the first zip (_dpy_stdlib.index: zipimport's own `{name: (path, compress,
data_size, file_size, file_offset, time, date, crc)}`) with one marshal.loads, hands it
to zipimport's cache, and puts the stdlib zip on sys.path after the first one. An index
that does not fit (another size, another shape) is ignored: zipimport then reads the
directory itself.

It also reads each module once instead of twice. CPython's zipimporter finds a module's
file name by loading the module: get_filename, which spec_from_loader calls while the
import system builds the module's spec, reads, decompresses and unmarshals the code only
to return its path, and get_code then does all of it again (python/cpython#141276).
StdlibZipImporter keeps the code object from the first read for the get_code call that
follows it.

The stdlib's encodings package, the first package every interpreter imports from the
zip, imports this module, so all of this holds with -S, -I and in virtual environments.
Were it missing or broken, encodings puts the stdlib zip on sys.path itself: imports
are slower then, never broken.
"""

import marshal
import sys
import zipimport

__all__ = ["StdlibZipImporter", "install"]

# The index's name in the first zip (src/distill/stdlib.rs writes it).
INDEX = "_dpy_stdlib.index"


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


def _stdlib_zip(first, loader):
    """The stdlib zip's path, its directory handed to zipimport when the index fits."""
    index = marshal.loads(loader.get_data(first + "/" + INDEX))
    archive, size, files = index["archive"], index["size"], index["files"]
    import posix  # built in: os is not imported yet on every version
    cached = zipimport._zip_directory_cache
    sample = next(iter(cached.get(first, {}).values()), None)
    entry = next(iter(files.values()), None)
    fits = (
        posix.stat(archive).st_size == size
        and sample is not None
        and entry is not None
        and len(sample) == len(entry)
        and all(type(a) is type(b) for a, b in zip(sample, entry))
    )
    if fits:
        cached.setdefault(archive, files)
    return archive


def install(archive=None):
    """Puts the stdlib zip on sys.path after `archive` (default: the zip this module came
    from), and serves both zips and the packages in them."""
    loader = getattr(__spec__, "loader", None)
    if archive is None:
        archive = getattr(loader, "archive", None)
        if not archive:
            return
    try:
        stdlib = _stdlib_zip(archive, loader)
    except Exception:
        stdlib = archive[:-4] + "-stdlib.zip"
    if stdlib not in sys.path:
        at = sys.path.index(archive) + 1 if archive in sys.path else len(sys.path)
        sys.path.insert(at, stdlib)
    # encodings, importing this module, is the one package split between the two zips.
    encodings = sys.modules.get("encodings")
    path = getattr(encodings, "__path__", None)
    if isinstance(path, list) and stdlib + "/encodings" not in path:
        path.append(stdlib + "/encodings")

    # 3.9's zipimporter loads through load_module, which never calls get_code.
    if sys.version_info < (3, 10):
        return

    def serves(path):
        return any(path == a or path.startswith(a + "/") for a in (archive, stdlib))

    def path_hook(path):
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
