"""os.path.realpath for thousands of paths at once, as the package records need it.

os.path.realpath walks every component of every path in Python, with a system call for
each; under qemu that cost seconds for the ~10,000 paths a dpkg database lists. The
paths come in few directories, so each directory is resolved once and its symlinks are
listed once (one directory read, no stat per file); a path then costs two lookups.
The answer is os.path.realpath's, which tests/gather_py.rs holds it to."""

import os


class RealPaths(object):
    def __init__(self):
        self._dirs = {}  # directory as given -> its real path
        self._links = {}  # real directory -> the names in it that are symlinks

    def __call__(self, path, hops=0):
        """os.path.realpath(path), for an absolute, normalised `path`."""
        head, _, tail = path.rpartition("/")
        real_head = self._dirs.get(head)
        if real_head is None:
            real_head = self._dirs[head] = os.path.realpath(head or "/")
        links = self._links.get(real_head)
        if links is None:
            links = self._links[real_head] = _symlinks_in(real_head)
        joined = (real_head if real_head != "/" else "") + "/" + tail
        if tail in ("", ".", ".."):
            return os.path.realpath(joined)
        if tail not in links:
            return joined
        # A link (the time zones hold hundreds): its target, taken from its real
        # directory. Leading `..` climb real directories, so lexically is right; one
        # after a name might climb out of a link, and a long chain may be a loop: both
        # are left to os.path.realpath.
        try:
            target = os.readlink(joined)
        except OSError:
            return os.path.realpath(joined)
        names = [p for p in target.split("/") if p not in ("", ".")]
        while names and names[0] == "..":
            names.pop(0)
        if hops >= 40 or ".." in names:
            return os.path.realpath(joined)
        base = "" if target.startswith("/") else real_head
        return self(os.path.normpath(base + "/" + target), hops + 1)


def with_real_paths(paths):
    """`paths` and the real path of each: what the package records compare a database's
    paths against (a package may list a file by either)."""
    real = RealPaths()
    return set(paths) | set(real(p) for p in paths)


def _symlinks_in(directory):
    """The names of the symlinks in `directory`; none when it cannot be read (then
    os.path.realpath leaves each name in it as it is, too)."""
    try:
        with os.scandir(directory) as entries:
            return set(entry.name for entry in entries if entry.is_symlink())
    except OSError:
        return set()
