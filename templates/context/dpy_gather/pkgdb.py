"""Package records. Image scanners list an image's OS packages from these databases: the
runtime root keeps the records of the packages whose files it carries, and nothing else."""

import glob
import os
import re

DPKG_STATUS = "/var/lib/dpkg/status"
DPKG_INFO = "/var/lib/dpkg/info"
APK_INSTALLED = "/lib/apk/db/installed"


def dpkg_owners(carried):
    """{package (as its .list is named): [its files in CARRIED, as the .list names them]},
    from this system's dpkg database. CARRIED holds paths and their real paths."""
    # os.path.realpath of each of the ~10,000 listed paths took seconds under qemu;
    # resolving each directory once gives the same answer.
    real_dirs = {}

    def real(path):
        head, tail = os.path.split(path)
        if head not in real_dirs:
            real_dirs[head] = os.path.realpath(head)
        joined = os.path.join(real_dirs[head], tail)
        return os.path.realpath(joined) if os.path.islink(joined) else joined

    owners = {}
    for listing in sorted(glob.glob(os.path.join(DPKG_INFO, "*.list"))):
        name = os.path.basename(listing)[:-5]
        with open(listing) as f:
            paths = [line.rstrip("\n") for line in f if line.strip()]
        mine = [p for p in paths if p in carried or real(p) in carried]
        # Directories are no package's own: every package lists /bin or /lib, which on a
        # merged-/usr root are links the runtime carries; keeping them would record bash,
        # apt and dpkg in a runtime image that has none of their files.
        mine = [p for p in mine if not os.path.isdir(p)]
        if mine:
            owners[name] = mine
    return owners


def dpkg_stanzas(packages, status=DPKG_STATUS):
    """The stanzas of STATUS for PACKAGES (names without architecture), in its order."""
    with open(status) as f:
        stanzas = f.read().split("\n\n")
    kept = []
    for stanza in stanzas:
        for line in stanza.splitlines():
            if line.startswith("Package:"):
                if line.split(":", 1)[1].strip() in packages:
                    kept.append(stanza.strip("\n"))
                break
    return kept


def apk_stanzas(carried, installed=APK_INSTALLED):
    """([package], [stanza]) of the apk database's packages owning a file in CARRIED."""
    with open(installed) as f:
        stanzas = [s for s in f.read().split("\n\n") if s.strip()]
    names, kept = [], []
    for stanza in stanzas:
        name, directory, owns = None, "", False
        for line in stanza.splitlines():
            if line.startswith("P:"):
                name = line[2:]
            elif line.startswith("F:"):
                directory = line[2:]
            elif line.startswith("R:"):
                path = "/" + directory + "/" + line[2:]
                if path in carried or os.path.realpath(path) in carried:
                    owns = True
        if owns and name:
            names.append(name)
            kept.append(stanza.strip("\n"))
    return names, kept


def record_grafted(stage, build_root, grafted, who="chroot-pip"):
    """Grafted libraries are seen by scanners too: the builder's records of the packages
    owning them join BUILD_ROOT's database, written whole into STAGE, which is copied over
    BUILD_ROOT and into BUILD_ROOT_DIFF (or, for the debug variant, is the layer over the
    runtime root). Without a database in both, nothing is recorded, as the runtime root
    keeps none. Returns the names of the packages recorded."""
    def read(path):
        with open(path) as f:
            return f.read()

    def write(path, text):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)

    recorded = []
    if os.path.isfile(build_root + DPKG_STATUS) and os.path.isfile(DPKG_STATUS):
        owners = dpkg_owners(grafted)
        current = read(build_root + DPKG_STATUS)
        have = set(re.findall(r"^Package:\s*(\S+)", current, re.M))
        wanted = set(n.split(":")[0] for n in owners)
        new = dpkg_stanzas(wanted - have)
        if owners:
            write(stage + DPKG_STATUS, "\n\n".join([current.strip("\n")] + new) + "\n")
        for name, paths in sorted(owners.items()):
            listing = "%s/%s.list" % (DPKG_INFO, name)
            old = read(build_root + listing).splitlines() if os.path.isfile(build_root + listing) else []
            write(stage + listing, "\n".join(old + [p for p in paths if p not in old]) + "\n")
        recorded = sorted(wanted)
    elif os.path.isfile(build_root + APK_INSTALLED) and os.path.isfile(APK_INSTALLED):
        names, stanzas = apk_stanzas(grafted)
        current = read(build_root + APK_INSTALLED)
        have = set(re.findall(r"^P:(\S+)", current, re.M))
        new = [stanza for name, stanza in zip(names, stanzas) if name not in have]
        if new:
            write(stage + APK_INSTALLED, "\n\n".join([current.strip("\n")] + new) + "\n\n")
        recorded = sorted(names)
    if recorded:
        print("%s: recorded the packages of what it added: %s" % (who, ", ".join(recorded)))
    return recorded
