"""gather: the source image's own interpreter describes itself and collects the raw
runtime root.

Runs inside the `gather` build stage as `python3 gather.py CONFIG OUT`, with whatever
interpreter the source image has (CPython 3.9 to 3.14, glibc or musl, /usr/local or
/usr). Nothing here assumes a layout: every path comes from the interpreter (sys,
sysconfig, ssl) or from the ELF headers of the files it runs.

OUT receives:
  layout.json  what the interpreter said, for dpy (src/layout.rs) to follow;
  root/        the runtime root before the distill: interpreter, byte-compiled stdlib,
               lib-dynload, the shared-library closure, dash, CA certificates, time
               zones, identity files and the OS package records of what is carried;
  stubs/       byte-compiled modules and packages dpy puts in the zip: ensurepip's
               no-op replacement and _dpy_zipimport (see compile_stdlib_file).

Failures print one `DPY-ERROR <kind>: <message>` line on stderr and exit 3; dpy turns
that line into its own error. Warnings are `DPY-WARN <message>` lines.

Pure standard library, Python 3.9 syntax.
"""

import ast
import fnmatch
import glob
import hashlib
import importlib.util
import json
import locale
import os
import platform
import py_compile
import re
import shutil
import stat
import struct
import subprocess
import sys
import sysconfig
import time


def fail(kind, message):
    sys.stderr.write("DPY-ERROR %s: %s\n" % (kind, message))
    sys.exit(3)


def warn(message, warnings):
    sys.stderr.write("DPY-WARN %s\n" % message)
    warnings.append(message)


# --- ELF: just enough of the format to follow a loader -------------------------------

PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
DT_NULL, DT_NEEDED, DT_STRTAB, DT_RPATH, DT_RUNPATH = 0, 1, 5, 15, 29


class Elf(object):
    """The parts of an ELF file a dynamic loader reads: class, machine, PT_INTERP,
    DT_NEEDED, DT_RPATH and DT_RUNPATH."""

    def __init__(self, elf_class, machine, interp, needed, rpath, runpath):
        self.elf_class = elf_class
        self.machine = machine
        self.interp = interp
        self.needed = needed
        self.rpath = rpath
        self.runpath = runpath

    @staticmethod
    def read(path):
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return None
        if len(data) < 64 or data[:4] != b"\x7fELF":
            return None
        elf_class, order = data[4], data[5]
        end = "<" if order == 1 else ">"
        if elf_class == 2:
            head = struct.unpack_from(end + "HHIQQQIHHHHHH", data, 16)
            ph_format, dyn_format = end + "IIQQQQQQ", end + "qQ"
        elif elf_class == 1:
            head = struct.unpack_from(end + "HHIIIIIHHHHHH", data, 16)
            ph_format, dyn_format = end + "IIIIIIII", end + "iI"
        else:
            return None
        machine, phoff, phentsize, phnum = head[1], head[4], head[8], head[9]
        loads, dynamic, interp = [], None, None
        for i in range(phnum):
            fields = struct.unpack_from(ph_format, data, phoff + i * phentsize)
            if elf_class == 2:
                p_type, _, p_offset, p_vaddr, _, p_filesz = fields[:6]
            else:
                p_type, p_offset, p_vaddr, _, p_filesz = fields[:5]
            if p_type == PT_LOAD:
                loads.append((p_vaddr, p_offset, p_filesz))
            elif p_type == PT_DYNAMIC:
                dynamic = (p_offset, p_filesz)
            elif p_type == PT_INTERP:
                interp = data[p_offset:p_offset + p_filesz].split(b"\0")[0].decode()
        needed, rpath, runpath = [], [], []
        if dynamic:
            entries, strtab = [], None
            size = struct.calcsize(dyn_format)
            offset, length = dynamic
            for pos in range(offset, offset + length, size):
                tag, value = struct.unpack_from(dyn_format, data, pos)
                if tag == DT_NULL:
                    break
                if tag == DT_STRTAB:
                    strtab = value
                entries.append((tag, value))
            # DT_STRTAB is an address: map it to a file offset through the loadable segments.
            base = None
            for vaddr, off, filesz in loads:
                if strtab is not None and vaddr <= strtab < vaddr + filesz:
                    base = strtab - vaddr + off
            if base is not None:
                def string(at):
                    start = base + at
                    return data[start:data.index(b"\0", start)].decode()
                for tag, value in entries:
                    if tag == DT_NEEDED:
                        needed.append(string(value))
                    elif tag == DT_RPATH:
                        rpath.extend(string(value).split(":"))
                    elif tag == DT_RUNPATH:
                        runpath.extend(string(value).split(":"))
        return Elf(elf_class, machine, interp, needed, rpath, runpath)


# --- Copying into the root, symlinks and all ----------------------------------------

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
                link = os.readlink(current)
                if not os.path.lexists(target):
                    os.symlink(link, target)
                self.carried.add(current)
                resolved = link if link.startswith("/") else os.path.join(os.path.dirname(current), link)
                resolved = os.path.normpath(resolved)
                rest = parts[i + 1:]
                self._walk(os.path.join(resolved, *rest) if rest else resolved, contents)
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
                        self._walk(current + "/" + name, True)
            elif last:
                if not os.path.lexists(target):
                    shutil.copy2(current, target)
                self.carried.add(current)

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
    zips = [p for p in sys.path if p.endswith("%d%d.zip" % (major, minor))]
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
        "zip_path": zips[0] if zips else os.path.join(prefix_lib, "python%d%d.zip" % (major, minor)),
        "landmark": os.path.join(paths["stdlib"], "os.pyc"),
        "ldlibrary": var("LDLIBRARY"),
        "libdir": var("LIBDIR"),
        "instsoname": var("INSTSONAME"),
        "ext_suffix": var("EXT_SUFFIX"),
        "soabi": var("SOABI"),
        "multiarch": var("MULTIARCH"),
        "platlibdir": getattr(sys, "platlibdir", "lib"),
    }


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


def resolve_library(name, elf, origin, defaults):
    if "/" in name:
        return name if os.path.exists(name) else None
    expand = lambda dirs: [d.replace("${ORIGIN}", origin).replace("$ORIGIN", origin) for d in dirs if d]
    dirs = [] if elf.runpath else expand(elf.rpath)
    dirs += expand(elf.runpath) + defaults
    for d in dirs:
        candidate = os.path.join(d, name)
        if os.path.exists(candidate):
            found = Elf.read(candidate)
            if found and found.elf_class == elf.elf_class and found.machine == elf.machine:
                return candidate
    return None


def write_manifest(out):
    """Lists every file written under `out` with its size, and every link, in
    manifest.json, written last: dpy checks the export it receives against it."""
    files, links = {}, []
    for current, dirs, names in os.walk(out):
        for name in names + [d for d in dirs if os.path.islink(os.path.join(current, d))]:
            path = os.path.join(current, name)
            relative = os.path.relpath(path, out)
            if os.path.islink(path):
                links.append(relative)
            elif os.path.isfile(path):
                files[relative] = os.path.getsize(path)
    files.pop("manifest.json", None)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump({"files": files, "links": sorted(links)}, f, sort_keys=True)


# Extension modules a runtime cannot do without, even when the source's own copy is broken.
REQUIRED_EXTENSIONS = ("_ssl",)


def import_error(module):
    """None when `module` imports in this (the source's) interpreter; else the last line
    of what importing it said."""
    result = subprocess.run([sys.executable, "-E", "-s", "-c", "import " + module],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    if result.returncode == 0:
        return None
    lines = result.stderr.strip().splitlines()
    return lines[-1] if lines else "exit %d" % result.returncode


# --- Byte-compiling the stdlib ----------------------------------------------------------

# The first package every interpreter imports from the zip. Its compiled form gains one
# guarded `import _dpy_zipimport` (templates/context/_dpy_zipimport.py), placed before
# its own imports so that every later module is read from the zip once.
HOOKED_MODULE = "encodings/__init__.py"
HOOK_MODULE = "_dpy_zipimport"
HOOK = "try:\n    import %s\nexcept Exception:\n    pass\n" % HOOK_MODULE

# Run by the source interpreter: imports each name given, then prints (as JSON) the
# stdlib-relative .pyc names of every stdlib module it has loaded, start included.
HOT_PROBE = r'''
import importlib, json, os, sys
for name in sys.argv[2:]:
    try:
        importlib.import_module(name)
    except BaseException:
        pass
stdlib = os.path.realpath(sys.argv[1]) + os.sep
files = set()
for module in list(sys.modules.values()):
    path = os.path.realpath(getattr(module, "__file__", None) or "/")
    if path.startswith(stdlib) and path.endswith(".py"):
        files.add(path[len(stdlib):-3].replace(os.sep, "/") + ".pyc")
print(json.dumps(sorted(files)))
'''


def compile_pyc(source, cfile, dfile):
    """Compiles the file `source` to a sourceless, unchecked-hash .pyc at `cfile` whose
    code names `dfile` (its path in the zip): nothing ever stats a source for it."""
    py_compile.compile(source, cfile=cfile, dfile=dfile, doraise=True,
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)


def write_pyc(code, source_bytes, cfile):
    """The same kind of .pyc as compile_pyc's, for a code object compiled here."""
    from importlib import _bootstrap_external
    pyc = _bootstrap_external._code_to_hash_pyc(code, importlib.util.source_hash(source_bytes), False)
    directory = os.path.dirname(cfile)
    if directory:
        os.makedirs(directory, exist_ok=True)
    with open(cfile, "wb") as f:
        f.write(pyc)


def recorded_name(relative, stdlib, zip_path, on_disk):
    """The file name a stdlib module's code object records, so tracebacks and __file__ are
    true: its path inside the zip, or its own path for a package kept on disk."""
    top = relative.split("/", 1)[0]
    return "%s/%s" % (stdlib if top in on_disk else zip_path, relative)


def compile_stdlib_file(source, cfile, dfile, relative):
    """Compiles one stdlib source with compile_pyc, the hooked module with its hook. Also
    run by dpy's compile-once step (src/bytecode.rs), so that bytecode is the same
    whichever platform made it."""
    if os.path.normpath(relative) != os.path.normpath(HOOKED_MODULE):
        compile_pyc(source, cfile, dfile)
        return
    with open(source, "rb") as f:
        data = f.read()
    tree = ast.parse(data, dfile)
    body = tree.body
    index = 0
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str):
        index = 1  # keep the docstring first: it is the module's __doc__
    while index < len(body) and isinstance(body[index], ast.ImportFrom) and body[index].module == "__future__":
        index += 1
    # Every node of the hook takes the line of the statement it precedes, so no line
    # number of the module's own code moves (tracebacks stay true to the source).
    line = body[index].lineno if index < len(body) else 1
    hook = ast.parse(HOOK).body
    for statement in hook:
        for node in ast.walk(statement):
            if hasattr(node, "lineno"):
                node.lineno = node.end_lineno = line
    tree.body[index:index] = hook
    write_pyc(compile(tree, dfile, "exec", dont_inherit=True), data, cfile)


# --- The gatherer ---------------------------------------------------------------------

class Gatherer(object):
    def __init__(self, config, out):
        self.config = config
        self.out = out
        self.root = Root(os.path.join(out, "root"))
        self.warnings = []
        self.stripped = []
        self.libraries = []
        self.announced = []
        self.broken = []  # extension modules left out: they do not import in the source

    def stripped_name(self, name):
        base = name.split(".", 1)[0] if not name.startswith("config-") else name
        for pattern in self.config.get("strip", []):
            if fnmatch.fnmatch(base, pattern) or fnmatch.fnmatch(name, pattern):
                return True
        return False

    def run(self):
        python = describe_python()
        executable_elf = Elf.read(python["executable"])
        loader = executable_elf.interp if executable_elf else None
        os_info = describe_os(loader)
        # The one check that the source is of the target's family (dpy's config names
        # the family, its libc and display name, from images/*.toml).
        wanted = self.config["family"]
        if os_info["family"] != wanted:
            fail(
                "family-mismatch",
                "the target is %s (%s) for %s sources, but the source image is %s (%s); give a %s "
                "source with --source-image or pick a %s target"
                % (wanted, self.config["libc"], self.config["display"],
                   os_info["pretty_name"] or os_info["family"], os_info["libc"], wanted, os_info["family"]),
            )
        if loader and not os.path.exists(loader):
            fail("no-loader", "the interpreter %s names the loader %s, which the source image lacks"
                 % (python["executable"], loader))
        os.makedirs(self.root.path, exist_ok=True)

        self.gather_interpreter(python)
        self.gather_stdlib(python)
        self.gather_stubs(python)
        self.announce_left_out(python)
        dash = self.gather_shell()
        ldconfig = self.gather_ldconfig(os_info)
        self.gather_closure(python, os_info, dash, ldconfig)
        ssl_info = describe_ssl()
        self.gather_certificates(ssl_info)
        self.gather_time_zones()
        locale_name = self.gather_locale(os_info)
        # An emulated platform (compile false) takes the native one's list along with its
        # bytecode (src/bytecode.rs): importing dozens of modules under qemu is slow.
        hot = self.find_hot_modules(python) if self.config.get("compile", True) else []
        self.gather_identity()
        if ldconfig:
            self.make_ld_so_cache(ldconfig)
        package_db, packages = self.gather_packages()

        layout = {
            "python": python,
            "ssl": ssl_info,
            "os": os_info,
            "loader": loader,
            "dash": dash,
            "ldconfig": ldconfig,
            "package_db": package_db,
            "packages": packages,
            "libraries": self.libraries,
            "locale": locale_name,
            "hot": hot,
            "stripped": sorted(set(self.stripped)),
            "announced": self.announced,
            "broken": self.broken,
            "warnings": self.warnings,
        }
        with open(os.path.join(self.out, "layout.json"), "w") as f:
            json.dump(layout, f, indent=2, sort_keys=True)
        write_manifest(self.out)
        print("gather: Python %s on %s (%s), %d libraries, %d packages recorded"
              % (python["version"], os_info["pretty_name"], os_info["libc"], len(self.libraries), len(packages)))

    def gather_interpreter(self, python):
        self.root.copy(python["executable"])
        for link in python["links"]:
            self.root.copy(link)
        self.root.copy(python["entrypoint"])

    def gather_stdlib(self, python):
        """The stdlib compiled by this interpreter into sourceless .pyc files whose code
        objects name `<zip>/<module>.py`, the path the module will have in the zip.

        With `"compile": false` in the config the sources are copied instead: dpy then
        brings bytecode compiled once on the native platform (bytecode does not depend on
        the CPU), which spares an emulated platform the slowest part of this stage.
        stdlib.json lists every source's digest either way, so dpy can check that two
        platforms' stdlibs really are the same before it shares anything."""
        stdlib = python["stdlib"]
        keep_out = set(os.path.realpath(p) for p in (python["lib_dynload"], python["purelib"]))
        zip_path = python["zip_path"]
        on_disk = self.config.get("on_disk", [])
        compile_here = self.config.get("compile", True)
        self.root.ensure_dir(stdlib)
        compiled = failed = 0
        digests = {}
        started = time.time()
        for current, dirs, files in os.walk(stdlib):
            relative_dir = os.path.relpath(current, stdlib)
            top = relative_dir == "."
            kept_dirs = []
            for d in sorted(dirs):
                path = os.path.join(current, d)
                if d == "__pycache__" or os.path.realpath(path) in keep_out:
                    continue
                if d in ("site-packages", "dist-packages") and top:
                    continue
                if top and self.stripped_name(d):
                    self.stripped.append(d)
                    continue
                kept_dirs.append(d)
                self.root.ensure_dir(path)
            dirs[:] = kept_dirs
            for name in sorted(files):
                if top and self.stripped_name(name):
                    self.stripped.append(name)
                    continue
                source = os.path.join(current, name)
                target = self.root.host(source)
                if name.endswith(".py"):
                    relative = os.path.normpath(os.path.join(relative_dir, name))
                    with open(source, "rb") as f:
                        digests[relative] = hashlib.sha256(f.read()).hexdigest()
                    if not compile_here:
                        shutil.copy2(source, target)
                        continue
                    try:
                        compile_stdlib_file(source, target[:-3] + ".pyc",
                                            recorded_name(relative, stdlib, zip_path, on_disk), relative)
                        compiled += 1
                    except (py_compile.PyCompileError, SyntaxError, UnicodeDecodeError) as e:
                        failed += 1
                        del digests[relative]
                        warn("%s does not compile and is left out: %s" % (source, str(e).splitlines()[-1]),
                             self.warnings)
                elif not name.endswith((".pyc", ".pyo")):
                    if not os.path.lexists(target):
                        shutil.copy2(source, target)
        for d in (python["purelib"], python["lib_dynload"]):
            self.root.ensure_dir(d)
        dynload = python["lib_dynload"]
        if os.path.isdir(dynload):
            for name in sorted(os.listdir(dynload)):
                if self.stripped_name(name):
                    self.stripped.append(name)
                    continue
                self.root.copy(os.path.join(dynload, name))
        landmark = python["landmark"]
        if not os.path.exists(self.root.host(landmark if compile_here else landmark[:-1])):
            fail("no-stdlib", "the stdlib at %s has no os module to serve as the prefix landmark" % stdlib)
        with open(os.path.join(self.out, "stdlib.json"), "w") as f:
            json.dump({"magic": importlib.util.MAGIC_NUMBER.hex(), "stdlib": stdlib, "zip_path": zip_path,
                       "on_disk": on_disk,
                       "compiled": compile_here, "seconds": round(time.time() - started, 3),
                       "files": digests}, f, indent=1, sort_keys=True)
        if compile_here:
            print("gather: compiled %d stdlib modules (%d left out) in %.1fs" % (compiled, failed, time.time() - started))
        else:
            print("gather: copied %d stdlib sources for bytecode compiled on another platform" % len(digests))

    def gather_stubs(self, python):
        stubs_dir = os.path.join(self.out, "stubs")
        os.makedirs(stubs_dir, exist_ok=True)
        for package, directory in sorted(self.config.get("stubs", {}).items()):
            if os.path.isfile(directory):  # a module: stubs/<name>.pyc
                compile_pyc(directory, os.path.join(stubs_dir, package + ".pyc"),
                            "%s/%s.py" % (python["zip_path"], package))
                continue
            out_dir = os.path.join(stubs_dir, package)
            os.makedirs(out_dir, exist_ok=True)
            for name in sorted(os.listdir(directory)):
                if name.endswith(".py"):
                    compile_pyc(os.path.join(directory, name), os.path.join(out_dir, name[:-3] + ".pyc"),
                                "%s/%s/%s" % (python["zip_path"], package, name))

    def announce_left_out(self, python):
        """A stub in the zip for each module the profile itself leaves out (`announced`),
        so `import readline` says why it fails instead of only "No module named"."""
        patterns = self.config.get("announced", [])
        profile = self.config.get("profile", "?")
        names = set()
        for entry in self.stripped:
            name = entry.split(".", 1)[0]
            if name.isidentifier() and any(fnmatch.fnmatch(name, p) for p in patterns):
                names.add(name)
        for name in sorted(names):
            source = 'raise ModuleNotFoundError(%r, name=%r)\n' % (
                "No module named %r: dpy's %s profile leaves it out of this image; "
                "build with --profile standard to keep it" % (name, profile), name)
            dfile = "%s/%s.py" % (python["zip_path"], name)
            write_pyc(compile(source, dfile, "exec", dont_inherit=True), source.encode(),
                      os.path.join(self.out, "stubs", name + ".pyc"))
        self.announced = sorted(names)

    def gather_shell(self):
        candidates = [shutil.which("dash"), "/bin/dash", "/usr/bin/dash"]
        dash = next((c for c in candidates if c and os.path.exists(c)), None)
        if not dash:
            fail("no-dash", "the source image has no dash and no package repository added it; "
                 "dash is the runtime image's /bin/sh: use a source with dash, or a builder that reaches a repository")
        self.root.copy(dash)
        real_dash = os.path.realpath(dash)
        self.root.ensure_dir("/bin")
        bin_dir = self.root.resolve("/bin")
        sh = os.path.join(bin_dir, "sh")
        if not os.path.lexists(sh):
            dash_dir = self.root.resolve(os.path.dirname(real_dash))
            link = os.path.basename(real_dash) if dash_dir == bin_dir else real_dash
            os.symlink(link, sh)
        return dash

    def gather_ldconfig(self, os_info):
        """glibc's ctypes.util.find_library runs the hard-coded /sbin/ldconfig -p."""
        if os_info["libc"] != "glibc":
            return None
        for path in ("/sbin/ldconfig", "/usr/sbin/ldconfig"):
            if os.path.exists(path):
                self.root.copy("/sbin/ldconfig" if os.path.exists("/sbin/ldconfig") else path)
                real = os.path.realpath(path)
                if os.path.exists(real + ".real"):  # a wrapper script around the binary
                    self.root.copy(real + ".real")
                self.root.copy("/etc/ld.so.conf")
                if os.path.isdir("/etc/ld.so.conf.d"):
                    self.root.copy("/etc/ld.so.conf.d")
                return path
        warn("the source image has no ldconfig: ctypes.util.find_library will find nothing", self.warnings)
        return None

    def gather_closure(self, python, os_info, dash, ldconfig):
        """The shared libraries that the interpreter, dash, ldconfig and each extension
        module load, transitively. A library missing for a required part is an error. An
        extension module whose library is missing is left out with a warning when it
        does not import in the source either (the standard profile is what imports
        there): official images keep _tkinter without Tk, vendors' builds miss a library
        here and there. One that does import in the source is an error, as dpy could
        not give the runtime what the source has."""
        defaults = search_dirs(os_info["libc"], python["multiarch"])
        required = [python["executable"], dash]
        if ldconfig:
            required.append(ldconfig)
        reference = Elf.read(python["executable"])
        for soname in self.config.get("extra_libraries", []):
            found = resolve_library(soname, reference, "/", defaults) if reference else None
            if found:
                self.root.copy(found)
                required.append(found)
        seen = set()
        found, missing = self.closure(required, os_info, defaults, seen)
        if missing:
            name, needer = missing[0]
            fail("missing-library", "%s needed by %s not found in the source image" % (name, needer))
        self.carry(found)
        dynload = python["lib_dynload"]
        if not os.path.isdir(dynload):
            return
        for entry in sorted(os.listdir(dynload)):
            if self.stripped_name(entry):
                continue
            module = os.path.join(dynload, entry)
            found, missing = self.closure([module], os_info, defaults, set(seen))
            if not missing:
                self.carry(found)
                seen.update(os.path.realpath(p) for _, p in found)
                seen.add(os.path.realpath(module))
                continue
            name, needer = missing[0]
            module_name = entry.split(".", 1)[0]
            if module_name in REQUIRED_EXTENSIONS:
                fail("missing-library", "%s needed by %s not found in the source image; %s is required "
                     "(a runtime without TLS is no runtime): use a source that has it"
                     % (name, needer, module_name))
            error = import_error(module_name)
            if error is None:
                fail("missing-library", "%s needed by %s not found in the source image, yet %s imports "
                     "there; the source loads it from a place dpy does not search"
                     % (name, needer, module_name))
            os.remove(self.root.resolve(module))
            self.broken.append({"module": module_name, "file": entry, "missing": name})
            warn("the stdlib module %s is left out: it does not import in the source either (%s, needed by %s, "
                 "is not in the source image)" % (module_name, name, os.path.basename(needer)), self.warnings)

    def closure(self, start, os_info, defaults, seen):
        """Resolves what the ELF files `start` load, transitively, copying nothing:
        returns ([(soname, path)], [(soname, needed by)]). Real paths in `seen` are not
        walked again, and those walked are added to it; their loaders are checked."""
        queue = list(start)
        found, missing = [], []
        while queue:
            path = queue.pop(0)
            real = os.path.realpath(path)
            if real in seen:
                continue
            seen.add(real)
            elf = Elf.read(real)
            if not elf:
                continue
            if elf.interp:
                if not os.path.exists(elf.interp):
                    fail("no-loader", "%s names the loader %s, which the source image lacks" % (path, elf.interp))
                self.root.copy(elf.interp)
            origin = os.path.dirname(path)
            for name in elf.needed:
                if os_info["libc"] == "musl" and musl_reserved(name):
                    continue
                library = resolve_library(name, elf, origin, defaults)
                if not library:
                    missing.append((name, path))
                    continue
                found.append((name, library))
                queue.append(library)
        return found, missing

    def carry(self, found):
        """Copies resolved libraries into the root and lists each once."""
        for name, path in found:
            if path not in [l["path"] for l in self.libraries]:
                self.libraries.append({"soname": name, "path": path})
            self.root.copy(path)

    def gather_certificates(self, info):
        cafile, capath = info["openssl_cafile"], info["openssl_capath"]
        have_file = bool(cafile) and os.path.isfile(cafile)
        have_dir = bool(capath) and os.path.isdir(capath) and bool(os.listdir(capath))
        if have_file:
            self.root.copy(cafile)
        if have_dir:
            self.root.copy(capath)
        if not have_file and cafile:
            bundles = ["/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/cert.pem", "/etc/pki/tls/certs/ca-bundle.crt"]
            bundle = next((b for b in bundles if os.path.isfile(b)), None)
            if bundle:
                # The interpreter's OpenSSL looks for this file first: pointing it at the
                # bundle makes create_default_context() load every CA at once.
                self.root.copy(bundle)
                self.root.ensure_dir(os.path.dirname(cafile))
                link = os.path.join(self.root.resolve(os.path.dirname(cafile)), os.path.basename(cafile))
                if not os.path.lexists(link):
                    os.symlink(bundle, link)
                have_file = True
        if not have_file and not have_dir:
            fail("no-ca-certificates", "the source image has no CA certificates at %s or %s; "
                 "install ca-certificates in the source image" % (cafile, capath))

    def gather_time_zones(self):
        try:
            import zoneinfo
            tzpath = list(zoneinfo.TZPATH)
        except ImportError:
            tzpath = []
        tzpath += ["/usr/share/zoneinfo"]
        found = next((p for p in tzpath if os.path.isdir(p)), None)
        left_out = self.config.get("time_zones_left_out", [])
        if found:
            self.root.ensure_dir(found)
            for name in sorted(os.listdir(found)):
                if not any(fnmatch.fnmatch(name, p) for p in left_out):
                    self.root.copy(os.path.join(found, name))
        else:
            warn("the source image has no time zone database: zoneinfo will know only UTC", self.warnings)

    def gather_locale(self, os_info):
        """The locale the interpreter coerces a bare C locale to (PEP 538), where glibc
        keeps it as files: without it the runtime image would fall back to Python's UTF-8
        mode, where C code and `locale.getencoding()` still see ASCII."""
        if os_info["libc"] != "glibc":
            return None  # musl's C.UTF-8 is built in
        # CPython tries these, in this order (PEP 538); asked in this process, since a
        # second interpreter costs seconds under qemu.
        saved = locale.setlocale(locale.LC_CTYPE)
        name = None
        for candidate in ("C.UTF-8", "C.utf8", "UTF-8"):
            try:
                locale.setlocale(locale.LC_CTYPE, candidate)
            except locale.Error:
                continue
            name = candidate
            break
        locale.setlocale(locale.LC_CTYPE, saved)
        if name is None:
            return None
        language, _, codeset = name.partition(".")
        # glibc looks a locale up by its name and by the normalized codeset (UTF-8 -> utf8).
        names = [name, language + "." + codeset.lower().replace("-", "")] if codeset else [name]
        for candidate in names:
            path = os.path.join("/usr/lib/locale", candidate)
            if os.path.isdir(path):
                self.root.copy(path)
                return name
        warn("the %s locale is not a directory under /usr/lib/locale (only in locale-archive?): "
             "the runtime image runs in Python's UTF-8 mode instead" % name, self.warnings)
        return None

    def find_hot_modules(self, python):
        """The stdlib files that a start of the interpreter, plus the config's `hot_imports`,
        load, and the hook module: dpy keeps them uncompressed in the zip. Asked of the source interpreter,
        since the closure of an import differs from one Python version to the next."""
        probe = subprocess.run(
            [sys.executable, "-E", "-s", "-c", HOT_PROBE, python["stdlib"]] + list(self.config.get("hot_imports", [])),
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True)
        try:
            loaded = json.loads(probe.stdout.strip().splitlines()[-1])
            # The source has no hook; in the runtime image every start imports it.
            return sorted(set(loaded) | {HOOK_MODULE + ".pyc"})
        except (ValueError, IndexError):
            warn("could not list the modules a start imports: every zip entry is compressed", self.warnings)
            return []

    def gather_identity(self):
        for path in ("/etc/os-release", "/etc/alpine-release", "/etc/debian_version"):
            if os.path.lexists(path):
                self.root.copy(path)

    def make_ld_so_cache(self, ldconfig):
        # -X: leave the root's links as they are; only write etc/ld.so.cache.
        result = subprocess.run([ldconfig, "-X", "-r", self.root.path],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
        if result.returncode != 0 or not os.path.exists(self.root.host("/etc/ld.so.cache")):
            warn("ldconfig could not write ld.so.cache: %s" % result.stdout.strip(), self.warnings)

    def gather_packages(self):
        carried = set(os.path.realpath(p) for p in self.root.carried)
        carried |= self.root.carried
        if os.path.isfile(DPKG_STATUS):
            return "dpkg", self.dpkg_records(carried)
        if os.path.isfile(APK_INSTALLED):
            return "apk", self.apk_records(carried)
        kind = "apk" if os.path.exists("/etc/alpine-release") else "dpkg"
        warn("the source image has no %s package database: scanners will not see OS packages" % kind,
             self.warnings)
        return None, []

    def dpkg_records(self, carried):
        owners = dpkg_owners(carried)
        packages = sorted(set(n.split(":")[0] for n in owners))
        info = self.root.host(DPKG_INFO)
        os.makedirs(info, exist_ok=True)
        with open(self.root.host(DPKG_STATUS), "w") as f:
            f.write("\n\n".join(dpkg_stanzas(packages)) + "\n")
        for name, paths in sorted(owners.items()):
            with open(os.path.join(info, name + ".list"), "w") as f:
                f.write("\n".join(paths) + "\n")
        return packages

    def apk_records(self, carried):
        names, stanzas = apk_stanzas(carried)
        db = self.root.host(os.path.dirname(APK_INSTALLED))
        os.makedirs(db, exist_ok=True)
        with open(self.root.host(APK_INSTALLED), "w") as f:
            f.write("\n\n".join(stanzas) + "\n\n")
        return sorted(names)


# --- package records -----------------------------------------------------------------
# Image scanners list an image's OS packages from these databases: the runtime root keeps
# the records of the packages whose files it carries, and nothing else.

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


def record_grafted(stage, build_root, grafted):
    """Grafted libraries are seen by scanners too: the builder's records of the packages
    owning them join BUILD_ROOT's database, written whole into STAGE, which is copied over
    BUILD_ROOT and into BUILD_ROOT_DIFF. Without a database in both, nothing is recorded,
    as the runtime root keeps none."""
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
        print("chroot-pip: recorded the packages of the grafted libraries: %s" % ", ".join(recorded))


# --- chroot-pip's graft --------------------------------------------------------------

def graft(stage, build_root):
    """After chroot-pip installed into STAGE (a scratch root merged into BUILD_ROOT next):
    every shared library an installed ELF file needs that neither BUILD_ROOT nor STAGE
    holds is copied from this builder into STAGE. Returns the number of failures."""
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
                sys.stderr.write("chroot-pip: %s needs %s, which neither $BUILD_ROOT nor this builder has; "
                                 "install it in the builder (or with chroot-apk/chroot-apt) first\n"
                                 % (runtime_path, name))
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
            print("chroot-pip: grafted %s from the builder (%s), needed by %s" % (name, real, runtime_path))
            grafted.update((real, link))
            queue.append(stage + real)
    if grafted:
        record_grafted(stage, build_root, grafted)
    return failures


def main(argv):
    if len(argv) == 4 and argv[1] == "--graft":
        return 4 if graft(argv[2].rstrip("/"), argv[3].rstrip("/")) else 0
    if len(argv) != 3:
        sys.stderr.write("usage: gather.py CONFIG OUT | gather.py --graft STAGE BUILD_ROOT\n")
        return 2
    with open(argv[1]) as f:
        config = json.load(f)
    Gatherer(config, argv[2]).run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
