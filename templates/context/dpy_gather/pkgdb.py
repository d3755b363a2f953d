"""Package records. Image scanners list an image's OS packages from these databases: the
runtime root keeps the records of the packages whose files it carries, and nothing else."""

import glob
import os

from .realpaths import RealPaths

DPKG_STATUS = "/var/lib/dpkg/status"
DPKG_INFO = "/var/lib/dpkg/info"
APK_INSTALLED = "/lib/apk/db/installed"


def dpkg_owners(carried):
    """{package (as its .list is named): [its files in CARRIED, as the .list names them]},
    from this system's dpkg database. CARRIED holds paths and their real paths."""
    real = RealPaths()
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


def _record(name, version=None, arch=None, license=None, files=None):
    return {"name": name, "version": version, "arch": arch, "license": license, "files": files or []}


def dpkg_records(text):
    """[(stanza, record)] of a dpkg status file, in its order: each stanza that names its
    Package. The rule, and tests/data/package_db_cases.json its table, is the one
    src/distill/sbom.rs reads the runtime root's database by."""
    out = []
    for stanza in text.split("\n\n"):
        fields = {}
        for line in stanza.split("\n"):
            # A continuation line (space or tab first) belongs to the field above.
            if line[:1] in (" ", "\t") or ":" not in line:
                continue
            key, value = line.split(":", 1)
            fields[key.strip()] = value.strip()
        if fields.get("Package"):
            out.append((stanza.strip("\n"), _record(
                fields["Package"], fields.get("Version"), fields.get("Architecture"))))
    return out


def apk_records(text):
    """[(stanza, record)] of apk's installed database, in its order: each stanza with a P:
    line. A file is F:'s directory joined with each R: after it."""
    out = []
    for stanza in text.split("\n\n"):
        record, directory = _record(None), ""
        for line in stanza.split("\n"):
            key, _, value = line.partition(":")
            if key == "P":
                record["name"] = value
            elif key == "V":
                record["version"] = value
            elif key == "A":
                record["arch"] = value
            elif key == "L":
                record["license"] = value
            elif key == "F":
                directory = value
            elif key == "R":
                record["files"].append("/" + "/".join(p for p in (directory, value) if p))
        if record["name"]:
            out.append((stanza.strip("\n"), record))
    return out


def dpkg_stanzas(packages, status=DPKG_STATUS):
    """The stanzas of STATUS for PACKAGES (names without architecture), in its order."""
    with open(status) as f:
        return [stanza for stanza, record in dpkg_records(f.read()) if record["name"] in packages]


def apk_stanzas(carried, installed=APK_INSTALLED):
    """([package], [stanza]) of the apk database's packages owning a file in CARRIED."""
    with open(installed) as f:
        records = apk_records(f.read())
    real = RealPaths()
    names, kept = [], []
    for stanza, record in records:
        if any(path in carried or real(path) in carried for path in record["files"]):
            names.append(record["name"])
            kept.append(stanza)
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
        have = set(record["name"] for _, record in dpkg_records(current))
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
        have = set(record["name"] for _, record in apk_records(current))
        new = [stanza for name, stanza in zip(names, stanzas) if name not in have]
        if new:
            write(stage + APK_INSTALLED, "\n\n".join([current.strip("\n")] + new) + "\n\n")
        recorded = sorted(names)
    if recorded:
        print("%s: recorded the packages of what it added: %s" % (who, ", ".join(recorded)))
    return recorded
