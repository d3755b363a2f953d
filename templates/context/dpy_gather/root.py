"""Copying into the root, symlinks and all."""

import os
import shutil
import stat


def copy_file(source, target):
    """shutil.copy2 (the bytes, the permission bits, the access and modification times)
    at a third of its system calls, which qemu translates one by one: one stat, no
    same-file checks, no extended attributes (dpy writes its layers' headers itself and
    keeps none). Anything unusual (no sendfile here) goes to shutil.copy2."""
    st = os.stat(source)
    if not stat.S_ISREG(st.st_mode):
        return shutil.copy2(source, target)
    fd_in = os.open(source, os.O_RDONLY)
    try:
        fd_out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            try:
                while os.sendfile(fd_out, fd_in, None, 1 << 24) > 0:
                    pass
            except OSError:
                os.close(fd_out)
                fd_out = -1
                return shutil.copy2(source, target)
            os.fchmod(fd_out, stat.S_IMODE(st.st_mode))
            os.utime(fd_out, ns=(st.st_atime_ns, st.st_mtime_ns))
        finally:
            if fd_out >= 0:
                os.close(fd_out)
    finally:
        os.close(fd_in)
    return target


class Root(object):
    """The output root. Every path is copied with each symlink along it recreated, so a
    merged-/usr source (`/lib64 -> usr/lib64`) gives a root where the same absolute paths
    resolve, and the interpreter's PT_INTERP is found."""

    def __init__(self, path):
        self.path = path
        self.copied = set()  # source paths (as given) already handled
        self.carried = set()  # real source paths of every file and link carried

    def host(self, path):
        return self.path + path

    def ensure_dir(self, path):
        """Creates directory `path` in the root, recreating symlinks on the way."""
        self._walk(os.path.normpath(path), contents=False)

    def copy(self, path):
        """Copies file, link or whole directory `path` (absolute, in the source)."""
        self._walk(os.path.normpath(path), contents=True)

    def _walk(self, path, contents):
        key = (path, contents)
        if key in self.copied:
            return
        self.copied.add(key)
        parts = [p for p in path.split("/") if p]
        current = ""
        for i, part in enumerate(parts):
            current += "/" + part
            last = i == len(parts) - 1
            target = self.host(current)
            if os.path.islink(current):
                self._follow(current, target, parts[i + 1:], contents)
                return
            if not os.path.exists(current):
                if contents:
                    return
                os.makedirs(target, exist_ok=True)
                continue
            if os.path.isdir(current):
                if not os.path.isdir(target) and not os.path.lexists(target):
                    os.mkdir(target)
                    shutil.copymode(current, target)
                if last and contents:
                    for name in sorted(os.listdir(current)):
                        self._entry(current + "/" + name)
            elif last:
                if not os.path.lexists(target):
                    copy_file(current, target)
                self.carried.add(current)

    def _follow(self, current, target, rest, contents):
        """Recreates the link `current` at `target` in the root, then goes on along the
        path it points at, followed by `rest`."""
        link = os.readlink(current)
        if not os.path.lexists(target):
            os.symlink(link, target)
        self.carried.add(current)
        resolved = link if link.startswith("/") else os.path.join(os.path.dirname(current), link)
        resolved = os.path.normpath(resolved)
        self._walk(os.path.join(resolved, *rest) if rest else resolved, contents)

    def _entry(self, path):
        """Copies `path`, whose directory is a real one already made in the root: what
        _walk does with it, looking only at its last component. A directory's contents
        (the time zones, a CA directory) are copied this way, at one lstat an entry
        instead of a walk from / (which cost a second under qemu)."""
        key = (path, True)
        if key in self.copied:
            return
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            self.copied.add(key)
            return
        if stat.S_ISDIR(mode):
            self._walk(path, True)
            return
        self.copied.add(key)
        target = self.host(path)
        if stat.S_ISLNK(mode):
            self._follow(path, target, [], True)
            return
        if not os.path.lexists(target):
            copy_file(path, target)
        self.carried.add(path)

    def resolve(self, path):
        """The host path of `path` inside the root, following the root's own symlinks."""
        parts = [p for p in path.split("/") if p]
        current = ""
        hops = 0
        while parts:
            part = parts.pop(0)
            candidate = current + "/" + part
            host = self.host(candidate)
            if os.path.islink(host):
                hops += 1
                if hops > 40:
                    return self.host(candidate)
                link = os.readlink(host)
                base = "" if link.startswith("/") else current
                parts = [p for p in (base + "/" + link).split("/") if p] + parts
                current = ""
                continue
            current = os.path.normpath(candidate) if part != ".." else os.path.dirname(current)
        return self.host(current or "/")
