"""Reads each stdlib module from the zip once instead of twice (installed by dpy).

CPython's zipimporter finds a module's file name by loading the module: get_filename,
which spec_from_loader calls while the import system builds the module's spec, reads,
decompresses and unmarshals the code only to return its path, and get_code then does
all of it again to run the module (python/cpython#141276). For a stdlib that lives in
a zip, that doubles the cost of every import.

StdlibZipImporter keeps the code object from the first read for the get_code call that
follows it. Everything else is the stock zipimporter, and nothing changes for other
zip files. The stdlib's encodings package, the first module every interpreter imports
from the zip, imports this module, so it works with -S, -I and in virtual
environments; were it missing, imports would be as slow as before, never broken.
"""

import sys
import zipimport

__all__ = ["StdlibZipImporter", "install"]


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


def install(archive=None):
    """Serves `archive` (default: the zip this module came from) and the packages in it."""
    # 3.9's zipimporter loads through load_module, which never calls get_code.
    if sys.version_info < (3, 10):
        return
    if archive is None:
        loader = getattr(__spec__, "loader", None)
        archive = getattr(loader, "archive", None)
        if not archive:
            return
    inside = archive + "/"

    def serves(path):
        return path == archive or path.startswith(inside)

    def path_hook(path):
        if serves(path):
            return StdlibZipImporter(path)
        return zipimport.zipimporter(path)

    path_hook.__doc__ = "zipimporter, reading modules of %s once" % archive
    hooks = sys.path_hooks
    for index, hook in enumerate(hooks):
        if hook is zipimport.zipimporter:
            hooks[index] = path_hook
    cache = sys.path_importer_cache
    for path, importer in list(cache.items()):
        if type(importer) is zipimport.zipimporter and serves(path):
            cache[path] = StdlibZipImporter(path)


install()
