"""The debug variant's tools (OUT/debug/): a layer over the runtime root with a shell and
the everyday tools for looking inside a running image.

busybox when the source has it (Alpine's own; on Debian the builder added the family's
package when a repository answered), with a link for each applet the runtime root lacks.
Otherwise the source's own shell and tools. Either way with the libraries they load that
the runtime root lacks, and the records of the packages that own them, so the debug
image's SBOM and scanners see what it adds."""

import os
import shutil
import subprocess

from .pkgdb import record_grafted
from .realpaths import with_real_paths
from .report import fail, warn
from .root import Root

# The source's own tools, taken when it has no busybox: what someone looking inside a
# running container reaches for first.
TOOLS = ["sh", "ls", "cat", "ps", "env", "id", "find", "grep", "less", "more", "head",
         "tail", "wc", "du", "df", "stat", "wget", "top", "free"]
# Without these the debug image is no help: a source lacking one fails the build.
REQUIRED = ["sh", "ls", "cat", "env", "id"]
# busybox applets never linked: a debug image has no package manager either, and no
# /linuxrc (an initrd's).
NOT_LINKED = ("dpkg", "dpkg-deb", "rpm", "rpm2cpio", "apk", "linuxrc")


def applets(busybox):
    """The applet paths busybox installs (`bin/ls`, `usr/bin/wget`), or, from a busybox
    without --list-full, each applet beside busybox itself."""
    run = subprocess.run([busybox, "--list-full"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, universal_newlines=True)
    if run.returncode == 0 and run.stdout.strip():
        paths = [line.strip() for line in run.stdout.splitlines() if line.strip()]
    else:
        run = subprocess.run([busybox, "--list"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, universal_newlines=True)
        here = os.path.dirname(busybox).lstrip("/")
        paths = [here + "/" + line.strip() for line in run.stdout.splitlines() if line.strip()]
    return ["/" + p.lstrip("/") for p in paths if os.path.basename(p) not in NOT_LINKED]


def collect(gatherer, os_info, defaults):
    """Fills OUT/debug/ and returns what layout.json says of it."""
    runtime = gatherer.root
    root = Root(os.path.join(gatherer.out, "debug"))
    os.makedirs(root.path, exist_ok=True)

    def in_runtime(path):
        return os.path.lexists(runtime.resolve(path))

    # /bin as the source has it (a merged-/usr source's link to usr/bin), for /bin/sh: a
    # runtime built with --shell none may have no /bin at all.
    root.ensure_dir("/bin")
    busybox = shutil.which("busybox") or next(
        (p for p in ("/bin/busybox", "/usr/bin/busybox") if os.path.exists(p)), None)
    starts, linked, missing = [], [], []
    if busybox:
        real = os.path.realpath(busybox)
        root.copy(real)
        starts.append(real)
        for path in applets(real):
            if path == real or in_runtime(path):
                continue
            root.ensure_dir(os.path.dirname(path))
            link = os.path.join(root.resolve(os.path.dirname(path)), os.path.basename(path))
            if not os.path.lexists(link):
                os.symlink(real, link)
                linked.append(path)
        kind = "busybox"
    else:
        for tool in TOOLS:
            # /bin/sh by that name: subprocess and os.system run it.
            path = "/bin/sh" if tool == "sh" and os.path.exists("/bin/sh") else shutil.which(tool)
            if not path:
                missing.append(tool)
                continue
            if in_runtime(path):
                continue
            root.copy(path)
            starts.append(os.path.realpath(path))
        absent = [t for t in REQUIRED if t in missing]
        if absent:
            fail("no-debug-tools", "the debug variant needs busybox or a shell and %s, but the source image "
                 "has no busybox, no package repository added one, and it lacks %s; build without debug "
                 "in --variants, or use a builder that reaches a repository"
                 % (", ".join(REQUIRED[1:]), ", ".join(absent)))
        if missing:
            warn("the debug image has no %s: the source has no busybox, no package repository added one, "
                 "and the source lacks them" % ", ".join(missing), gatherer.warnings)
        kind = "source"

    # Their libraries: those the runtime root already carries stay out of the layer.
    found, unresolved = gatherer.closure(starts, os_info, defaults, set())
    if unresolved:
        name, needer = unresolved[0]
        fail("missing-library", "%s needed by %s (for the debug image) not found in the source image"
             % (name, needer))
    for _, path in found:
        if not in_runtime(path):
            root.copy(path)

    carried = with_real_paths(root.carried)
    packages = record_grafted(root.path, runtime.path, carried, who="gather (debug)")
    return {
        "tools": kind,
        "busybox": os.path.realpath(busybox) if busybox else None,
        "linked": len(linked),
        "missing": missing,
        "packages": packages,
    }
