"""What the source says about itself: the interpreter's own answers (sys, sysconfig,
ssl), the OS, and where its loader looks for shared libraries."""

import glob
import os
import platform
import sys
import sysconfig

from .compile import stdlib_zip
from .elf import Elf


# --- The interpreter's own answers ---------------------------------------------------

def read_os_release():
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        values = {}
        for line in lines:
            if "=" in line and not line.startswith("#"):
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip().strip('"').strip("'")
        return values
    return {}


def find_lib_dynload(platstdlib):
    for name in ("_json", "_struct", "math", "select", "_ssl", "_socket", "array"):
        try:
            module = __import__(name)
        except ImportError:
            continue
        path = getattr(module, "__file__", None)
        if path and path.endswith(".so"):
            return os.path.dirname(os.path.realpath(path))
    destshared = sysconfig.get_config_var("DESTSHARED")
    if destshared and os.path.isdir(destshared):
        return destshared
    return os.path.join(platstdlib, "lib-dynload")


def abi_thread():
    """"t" on a free-threaded build (3.13+, PEP 703/779), else "": getpath puts it in the
    zip's name (python314t.zip) as sysconfig does in the stdlib directory's."""
    flag = sysconfig.get_config_var("ABI_THREAD")
    if flag is None:
        flag = "t" if "t" in getattr(sys, "abiflags", "") else ""
    return flag


def getpath_zip(path, prefix_lib, major, minor, thread):
    """getpath's zip entry: the entry of `path` (sys.path) named python<X><Y><t>.zip, or
    where getpath would have put it, beside the stdlib directory. Only that exact name:
    a free-threaded build's python314t.zip is not a default build's python314.zip."""
    name = "python%d%d%s.zip" % (major, minor, thread)
    for entry in path:
        if os.path.basename(entry) == name:
            return entry
    return os.path.join(prefix_lib, name)


def describe_python():
    major, minor = sys.version_info[:2]
    executable = os.path.realpath(sys.executable)
    bin_dir = os.path.dirname(executable)
    links = {}
    for name in sorted(os.listdir(bin_dir)):
        path = os.path.join(bin_dir, name)
        if name.startswith("python") and os.path.islink(path) and os.path.realpath(path) == executable:
            links[path] = os.readlink(path)
    entrypoint = os.path.join(bin_dir, "python3")
    if os.path.realpath(entrypoint) != executable:
        entrypoint = executable
    paths = sysconfig.get_paths()
    prefix_lib = os.path.dirname(paths["stdlib"])
    zip_path = getpath_zip(sys.path, prefix_lib, major, minor, abi_thread())
    var = sysconfig.get_config_var
    return {
        "version": platform.python_version(),
        "major": major,
        "minor": minor,
        "executable": executable,
        "entrypoint": entrypoint,
        "links": links,
        "prefix": sys.prefix,
        "exec_prefix": sys.exec_prefix,
        "stdlib": paths["stdlib"],
        "platstdlib": paths["platstdlib"],
        "purelib": paths["purelib"],
        "lib_dynload": find_lib_dynload(paths["platstdlib"]),
        "zip_path": zip_path,
        "stdlib_zip": stdlib_zip(zip_path),
        "landmark": os.path.join(paths["stdlib"], "os.pyc"),
        "ldlibrary": var("LDLIBRARY"),
        "libdir": var("LIBDIR"),
        "instsoname": var("INSTSONAME"),
        "ext_suffix": var("EXT_SUFFIX"),
        "soabi": var("SOABI"),
        "multiarch": var("MULTIARCH"),
        "platlibdir": getattr(sys, "platlibdir", "lib"),
        "zip_implicit_dirs": zipimport_lists_directories(),
    }


def zipimport_lists_directories():
    """Whether this interpreter's zipimport lists a zip's implicit directories when it
    reads the zip's directory (`a/` for an entry `a/b.pyc`, whose value is None: CPython
    3.14 and later). dpy's index of the stdlib zip must be what zipimport itself reads,
    so the interpreter is asked, not its version."""
    import tempfile
    import zipfile
    import zipimport
    with tempfile.TemporaryDirectory() as tmp:
        probe = os.path.join(tmp, "probe.zip")
        with zipfile.ZipFile(probe, "w") as z:
            z.writestr("a/b.pyc", b"")
        return "a/" in zipimport._read_directory(probe)


def own_pip():
    """The version of the source's own pip, or None: builder-pip.sh's first question
    (pip's own package, imported), asked in this process. Under qemu another interpreter
    start costs half a CPU-second that the native platform's build needs meanwhile, so
    an emulated platform's -buildroot takes this answer instead of builder-pip.sh's."""
    dont_write = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # nothing written into the source's site-packages
    try:
        import pip
        version = getattr(pip, "__version__", None)
    except BaseException:  # the source's code: a broken pip is no pip
        return None
    finally:
        sys.dont_write_bytecode = dont_write
    return version if isinstance(version, str) and version else None


def describe_ssl():
    # Imported here, after the closure: a source whose _ssl cannot load is refused there,
    # in one line naming the missing library, not by a traceback at the top.
    import ssl
    paths = ssl.get_default_verify_paths()
    return {
        "cafile": paths.cafile,
        "capath": paths.capath,
        "openssl_cafile": paths.openssl_cafile,
        "openssl_capath": paths.openssl_capath,
        "openssl_version": ssl.OPENSSL_VERSION,
    }


def describe_os(loader):
    release = read_os_release()
    ids = [release.get("ID", "")] + release.get("ID_LIKE", "").split()
    if os.path.exists("/etc/alpine-release") or "alpine" in ids:
        family = "alpine"
    elif "debian" in ids:
        family = "debian"
    else:
        family = "other"
    if loader and "musl" in os.path.basename(loader):
        libc = "musl"
    elif platform.libc_ver()[0] == "glibc" or (loader and "ld-linux" in loader):
        libc = "glibc"
    else:
        libc = "unknown"
    return {
        "id": release.get("ID"),
        "version_id": release.get("VERSION_ID"),
        "pretty_name": release.get("PRETTY_NAME"),
        "family": family,
        "libc": libc,
        "machine": platform.machine(),
    }


# --- Where the loader looks -----------------------------------------------------------

def ld_so_conf(path, depth=0):
    dirs = []
    if depth > 8:
        return dirs
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return dirs
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line.startswith("include"):
            for included in sorted(glob.glob(line[len("include"):].strip())):
                dirs.extend(ld_so_conf(included, depth + 1))
        elif line.startswith("/"):
            dirs.append(line)
    return dirs


def search_dirs(libc, multiarch):
    if libc == "musl":
        for path in sorted(glob.glob("/etc/ld-musl-*.path")):
            with open(path) as f:
                return [d for d in f.read().replace("\n", ":").split(":") if d]
        return ["/lib", "/usr/local/lib", "/usr/lib"]
    dirs = ld_so_conf("/etc/ld.so.conf")
    if multiarch:
        dirs += ["/lib/" + multiarch, "/usr/lib/" + multiarch]
    dirs += ["/lib64", "/usr/lib64", "/lib", "/usr/lib"]
    seen, out = set(), []
    for d in dirs:
        if d not in seen:
            seen.add(d)
            out.append(d)
    return out


# Names musl's loader answers for itself: they are all one libc, the loader.
MUSL_RESERVED = ("c", "pthread", "rt", "m", "dl", "util", "xnet")


def musl_reserved(name):
    if not name.startswith("lib"):
        return False
    stem, dot, rest = name[3:].partition(".so")
    return bool(dot) and stem in MUSL_RESERVED and (rest == "" or rest.startswith("."))


def search_order(rpath, runpath, origin, defaults):
    """The directories the loader tries for a DT_NEEDED name, in order: DT_RPATH unless
    there is a DT_RUNPATH, then DT_RUNPATH, then the defaults; $ORIGIN is the directory of
    the object that needs it, and empty entries are skipped. src/distill/elf.rs applies
    the same rule to verify what this collects: tests/data/loader_cases.json is the table
    of cases both run."""
    def expand(entries):
        dirs = [d for entry in entries for d in entry.split(":") if d]
        return [d.replace("${ORIGIN}", origin).replace("$ORIGIN", origin) for d in dirs]
    return ([] if runpath else expand(rpath)) + expand(runpath) + list(defaults)


def resolve_library(name, elf, origin, defaults):
    if "/" in name:
        return name if os.path.exists(name) else None
    for d in search_order(elf.rpath, elf.runpath, origin, defaults):
        candidate = os.path.join(d, name)
        if os.path.exists(candidate):
            found = Elf.read(candidate)
            if found and found.elf_class == elf.elf_class and found.machine == elf.machine:
                return candidate
    return None
