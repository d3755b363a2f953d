"""The install helpers' graft (chroot-pip, chroot-uv: the DPY_HELPER they set)."""

import os
import shutil
import sys
import sysconfig

from .elf import Elf
from .pkgdb import record_grafted
from .probe import musl_reserved, resolve_library, search_dirs


def graft(stage, build_root):
    """After a helper installed into STAGE (a scratch root merged into BUILD_ROOT next):
    every shared library an installed ELF file needs that neither BUILD_ROOT nor STAGE
    holds is copied from this builder into STAGE. Returns the number of failures."""
    who = os.environ.get("DPY_HELPER", "chroot-pip")
    executable = Elf.read(os.path.realpath(sys.executable))
    loader = executable.interp if executable else None
    libc = "musl" if loader and "musl" in loader else "glibc"
    defaults = search_dirs(libc, sysconfig.get_config_var("MULTIARCH"))

    def present(name, elf, runtime_dir):
        expand = lambda dirs: [d.replace("${ORIGIN}", runtime_dir).replace("$ORIGIN", runtime_dir) for d in dirs if d]
        dirs = ([] if elf.runpath else expand(elf.rpath)) + expand(elf.runpath) + defaults
        return any(os.path.exists(os.path.normpath(base + d + "/" + name))
                   for d in dirs for base in (build_root, stage))

    queue = []
    for current, _, files in os.walk(stage):
        for name in files:
            queue.append(os.path.join(current, name))
    failures, seen, grafted = 0, set(), set()
    while queue:
        path = queue.pop(0)
        if path in seen or os.path.islink(path):
            continue
        seen.add(path)
        elf = Elf.read(path)
        if not elf:
            continue
        runtime_path = "/" + os.path.relpath(path, stage) if path.startswith(stage + "/") else path
        runtime_dir = os.path.dirname(runtime_path)
        for name in elf.needed:
            if (libc == "musl" and musl_reserved(name)) or present(name, elf, runtime_dir):
                continue
            found = resolve_library(name, elf, "/nonexistent", defaults)
            if not found:
                sys.stderr.write("%s: %s needs %s, which neither $BUILD_ROOT nor this builder has; "
                                 "install it in the builder (or with chroot-apk/chroot-apt) first\n"
                                 % (who, runtime_path, name))
                failures += 1
                continue
            # Copy the real file and the soname link at their canonical (merged-/usr) places,
            # which are real directories in BUILD_ROOT too.
            real = os.path.realpath(found)
            link = os.path.join(os.path.realpath(os.path.dirname(found)), name)
            os.makedirs(os.path.dirname(stage + real), exist_ok=True)
            if not os.path.exists(stage + real):
                shutil.copy2(real, stage + real)
            if link != real and not os.path.lexists(stage + link):
                os.symlink(os.path.basename(real) if os.path.dirname(link) == os.path.dirname(real) else real,
                           stage + link)
            print("%s: grafted %s from the builder (%s), needed by %s" % (who, name, real, runtime_path))
            grafted.update((real, link))
            queue.append(stage + real)
    if grafted:
        record_grafted(stage, build_root, grafted, who)
    return failures
