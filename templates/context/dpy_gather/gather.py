"""The gatherer: collects the raw runtime root and writes what the interpreter said.

OUT receives:
  layout.json  what the interpreter said, for dpy (src/layout.rs) to follow;
  root/        the runtime root before the distill: interpreter, byte-compiled stdlib,
               lib-dynload, the shared-library closure, dash, CA certificates, time
               zones, identity files and the OS package records of what is carried;
  debug/       the debug variant's layer over root/ (dpy_gather/debug.py), when asked;
  stubs/       byte-compiled modules and packages dpy adds to the stdlib: ensurepip's
               no-op replacement and _dpy_zipimport (see compile_stdlib_file).
"""

import ast
import fnmatch
import hashlib
import importlib.util
import json
import locale
import os
import re
import shutil
import subprocess
import sys
import time

from .debug import collect as collect_debug
from .compile import (HOOK_MODULE, NOT_COMPILING, compile_all, compile_pyc, compile_stdlib_file, recorded_name,
                      write_pyc)
from .elf import Elf
from .pkgdb import APK_INSTALLED, DPKG_INFO, DPKG_STATUS, apk_stanzas, dpkg_owners, dpkg_stanzas
from .realpaths import with_real_paths
from .probe import describe_os, describe_python, describe_ssl, musl_reserved, own_pip, resolve_library, search_dirs
from .report import fail, warn
from .root import Root, copy_file


def version_mismatch(wanted, found):
    """Why the source's Python `found` (e.g. `3.15.2`, `3.14.0rc1`) is not the target's
    `wanted` (`3.14`, or `3.14.2` when the target names a release), or None. A source
    given with --source-image for the wrong target would otherwise be published under
    the target's tag."""
    if not wanted:
        return None
    # The release's numbers, without a suffix such as `rc1` or `+`.
    numbers = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", found)
    have = [n for n in numbers.groups() if n is not None] if numbers else []
    want = wanted.split(".")
    if have[: len(want)] == want:
        return None
    return ("the target is Python %s but the source image's interpreter is Python %s; give a "
            "Python %s source with --source-image, or pick a %s target"
            % (wanted, found, wanted, ".".join(have[:2]) or "matching"))


def write_manifest(out):
    """Lists every file written under `out` with its size, and every link, in
    manifest.json, written last: dpy checks the export it receives against it."""
    files, links = {}, []

    # One directory read per directory and one lstat per file: os.walk with islink,
    # isfile and getsize asked three times as much, which cost half a second under qemu.
    def walk(directory, prefix):
        with os.scandir(directory) as entries:
            for entry in entries:
                relative = prefix + entry.name
                if entry.is_symlink():
                    links.append(relative)
                elif entry.is_dir(follow_symlinks=False):
                    walk(entry.path, relative + "/")
                elif entry.is_file(follow_symlinks=False):
                    files[relative] = entry.stat(follow_symlinks=False).st_size

    walk(out, "")
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


# Run by the source interpreter: imports each name given, then prints (as JSON) the
# stdlib-relative .pyc names of every stdlib module it has loaded, start included.
# (json and os stay imported: the stored set has always held what they load.)
HOT_PROBE = r'''
import importlib, json, os, sys
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except BaseException:
        pass
print(repr(sorted(getattr(m, "__file__", None) or "" for m in list(sys.modules.values()))))
'''


# Prints the files of the modules a start loaded, importing nothing itself.
# Frozen modules (3.11+: os, site, codecs, importlib...) have a __file__ too, but no location.
STARTUP_PROBE = ("import sys; print(repr(sorted(m.__file__ for m in list(sys.modules.values()) "
                 "if getattr(getattr(m, '__spec__', None), 'has_location', False) and getattr(m, '__file__', None))))")


def probe_module_files(args):
    """The module files a probe run by the source interpreter with `args` printed (a list
    literal, on its last line), or None when it printed none."""
    probe = subprocess.run(
        [sys.executable] + args, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True)
    try:
        return ast.literal_eval(probe.stdout.strip().splitlines()[-1])
    except (ValueError, SyntaxError, IndexError):
        return None


def stdlib_pycs(paths, stdlib):
    """The zip names (`json/decoder.pyc`) of the stdlib sources among `paths`. A file
    linked into the stdlib from elsewhere counts by the path it was imported by: Debian's
    sitecustomize.py, which every start imports, links to /etc/python3.X/."""
    roots = [os.path.normpath(stdlib) + os.sep, os.path.realpath(stdlib) + os.sep]
    names = set()
    for path in paths:
        for candidate in (os.path.normpath(path or "/"), os.path.realpath(path or "/")):
            root = next((r for r in roots if candidate.startswith(r)), None)
            if root is not None and candidate.endswith(".py"):
                names.add(candidate[len(root):-3].replace(os.sep, "/") + ".pyc")
                break
    return names


# Directories under the stdlib that hold no stdlib modules: extension modules and
# third-party packages.
NOT_STDLIB = ("site-packages", "dist-packages")


def stdlib_keep_out(python):
    """The stdlib-relative directories that are not the stdlib: lib-dynload, site-packages
    and the like. Decided here once: the stdlib walk skips them, and dpy's distill leaves
    them out of the zip (layout.json's stdlib_keep_out)."""
    stdlib = os.path.normpath(python["stdlib"])
    out = set(NOT_STDLIB)
    for path in (python["lib_dynload"], python["purelib"], python["platstdlib"]):
        relative = os.path.relpath(os.path.normpath(path), stdlib)
        if relative != "." and not relative.startswith(".."):
            out.add(relative)
    return sorted(out)


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
        self.keep_out = []  # stdlib-relative directories that are not the stdlib

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
        mismatch = version_mismatch(self.config.get("python"), python["version"])
        if mismatch:
            fail("version-mismatch", mismatch)
        if loader and not os.path.exists(loader):
            fail("no-loader", "the interpreter %s names the loader %s, which the source image lacks"
                 % (python["executable"], loader))
        os.makedirs(self.root.path, exist_ok=True)

        self.gather_interpreter(python)
        self.gather_stdlib(python)
        self.gather_stubs(python)
        self.announce_left_out(python)
        # --shell none: no dash, no /bin/sh; the builder's own shell serves -buildroot.
        dash = self.gather_shell() if self.config.get("shell", "dash") == "dash" else None
        ldconfig = self.gather_ldconfig(os_info)
        self.gather_closure(python, os_info, dash, ldconfig)
        ssl_info = describe_ssl()
        self.gather_certificates(ssl_info)
        self.gather_time_zones()
        locale_name = self.gather_locale(os_info)
        # An emulated platform (compile false) takes the native one's list along with its
        # bytecode (src/bytecode.rs): importing dozens of modules under qemu is slow.
        hot = self.find_hot_modules(python) if self.config.get("compile", True) else []
        startup = self.find_startup_modules(python) if self.config.get("compile", True) else []
        self.gather_identity()
        if ldconfig:
            self.make_ld_so_cache(ldconfig)
        package_db, packages = self.gather_packages()
        # Last: the debug layer's package records extend the runtime root's.
        debug = None
        if self.config.get("debug"):
            debug = collect_debug(self, os_info, search_dirs(os_info["libc"], python["multiarch"]))

        layout = {
            "python": python,
            "ssl": ssl_info,
            "os": os_info,
            "loader": loader,
            "dash": dash,
            "pip": own_pip(),
            "debug": debug,
            "ldconfig": ldconfig,
            "package_db": package_db,
            "packages": packages,
            "libraries": self.libraries,
            "locale": locale_name,
            "hot": hot,
            "startup": startup,
            "stripped": sorted(set(self.stripped)),
            "announced": self.announced,
            "broken": self.broken,
            "stdlib_keep_out": self.keep_out,
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

        With `"compile": false` in the config the sources are only read: dpy then brings
        bytecode compiled once on the native platform (bytecode does not depend on the
        CPU), which spares an emulated platform the slowest part of this stage, and the
        sources are not written either, since nothing reads them past their digests.
        stdlib.json lists every source's digest either way, so dpy can check that two
        platforms' stdlibs really are the same before it shares anything; should one
        module differ, dpy gathers this platform again, compiling here."""
        stdlib = python["stdlib"]
        self.keep_out = stdlib_keep_out(python)
        keep_out = set(os.path.realpath(os.path.join(stdlib, p)) for p in self.keep_out)
        keep_out.update(os.path.realpath(p) for p in (python["lib_dynload"], python["purelib"]))
        zip_path = python["stdlib_zip"]
        on_disk = self.config.get("on_disk", [])
        compile_here = self.config.get("compile", True)
        self.root.ensure_dir(stdlib)
        own = 0
        multiarch = python.get("multiarch") or ""
        digests = {}
        jobs = []  # compiled once the walk is done, on every CPU (compile_all)
        started = time.time()
        for current, dirs, files in os.walk(stdlib):
            relative_dir = os.path.relpath(current, stdlib)
            top = relative_dir == "."
            kept_dirs = []
            for d in sorted(dirs):
                path = os.path.join(current, d)
                if d == "__pycache__" or os.path.realpath(path) in keep_out:
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
                        # A module named after this platform (_sysconfigdata__linux_
                        # aarch64-linux-gnu.py) is the native platform's in no form: its
                        # bytecode is made here, sparing dpy a build on the native one.
                        if multiarch and multiarch in name and self.compile_own(
                                source, target, recorded_name(relative, stdlib, zip_path, on_disk), relative):
                            own += 1
                        continue
                    jobs.append((source, target[:-3] + ".pyc",
                                 recorded_name(relative, stdlib, zip_path, on_disk), relative))
                elif not name.endswith((".pyc", ".pyo")):
                    if not os.path.lexists(target):
                        copy_file(source, target)
        failures = compile_all(jobs)
        for index in sorted(failures):
            source, _, _, relative = jobs[index]
            del digests[relative]
            warn("%s does not compile and is left out: %s" % (source, failures[index]), self.warnings)
        compiled, failed = len(jobs) - len(failures), len(failures)
        for d in (python["purelib"], python["lib_dynload"]):
            self.root.ensure_dir(d)
        dynload = python["lib_dynload"]
        if os.path.isdir(dynload):
            for name in sorted(os.listdir(dynload)):
                if self.stripped_name(name):
                    self.stripped.append(name)
                    continue
                self.root.copy(os.path.join(dynload, name))
        # The compiled os module, or (its bytecode to come from the native platform) its
        # source among those digested.
        landmark = python["landmark"]
        if not (os.path.exists(self.root.host(landmark)) if compile_here
                else os.path.relpath(landmark[:-1], stdlib) in digests):
            fail("no-stdlib", "the stdlib at %s has no os module to serve as the prefix landmark" % stdlib)
        with open(os.path.join(self.out, "stdlib.json"), "w") as f:
            json.dump({"magic": importlib.util.MAGIC_NUMBER.hex(), "stdlib": stdlib, "zip_path": zip_path,
                       "on_disk": on_disk,
                       "compiled": compile_here, "seconds": round(time.time() - started, 3),
                       "files": digests}, f, indent=1, sort_keys=True)
        if compile_here:
            print("gather: compiled %d stdlib modules (%d left out) in %.1fs" % (compiled, failed, time.time() - started))
        else:
            print("gather: digested %d stdlib sources for bytecode compiled on another platform, compiled %d named "
                  "after this one" % (len(digests) - own, own))

    @staticmethod
    def compile_own(source, target, recorded, relative):
        """Compiles one module of an emulated platform's stdlib here; False (and nothing
        written) when it does not compile: the native platform has no bytecode for it
        either, so dpy gathers this platform again, compiling here."""
        try:
            compile_stdlib_file(source, target[:-3] + ".pyc", recorded, relative)
            return True
        except NOT_COMPILING:
            if os.path.lexists(target[:-3] + ".pyc"):
                os.remove(target[:-3] + ".pyc")
            return False

    def gather_stubs(self, python):
        stubs_dir = os.path.join(self.out, "stubs")
        os.makedirs(stubs_dir, exist_ok=True)
        for package, directory in sorted(self.config.get("stubs", {}).items()):
            if os.path.isfile(directory):  # a module: stubs/<name>.pyc
                compile_pyc(directory, os.path.join(stubs_dir, package + ".pyc"),
                            "%s/%s.py" % (python["stdlib_zip"], package))
                continue
            out_dir = os.path.join(stubs_dir, package)
            os.makedirs(out_dir, exist_ok=True)
            for name in sorted(os.listdir(directory)):
                if name.endswith(".py"):
                    compile_pyc(os.path.join(directory, name), os.path.join(out_dir, name[:-3] + ".pyc"),
                                "%s/%s/%s" % (python["stdlib_zip"], package, name))

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
            dfile = "%s/%s.py" % (python["stdlib_zip"], name)
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
        required = [python["executable"]] + ([dash] if dash else [])
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
            # Listed normalised: a path found through $ORIGIN reads
            # /usr/local/bin/../lib/..., and dpy refuses a `..` in any path of the layout.
            listed = os.path.normpath(path)
            if listed not in [l["path"] for l in self.libraries]:
                self.libraries.append({"soname": name, "path": listed})
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
        paths = probe_module_files(["-E", "-s", "-c", HOT_PROBE] + list(self.config.get("hot_imports", [])))
        if paths is None:
            warn("could not list the modules a start imports: every zip entry is compressed", self.warnings)
            return []
        # The source has no hook; in the runtime image the first import from the zip imports it.
        return sorted(stdlib_pycs(paths, python["stdlib"]) | {HOOK_MODULE + ".pyc"})

    def find_startup_modules(self, python):
        """What stays on disk in the stdlib directory: the stdlib files a bare start loads
        (`-c pass`, with -S and with -I), asked of the source interpreter, as names
        relative to the stdlib. A package goes whole, but encodings, the package whose
        inserted code completes it from the stdlib zip; and the hook, which that code
        imports at the first import from the zip."""
        loaded = set()
        for flags in ([], ["-S"], ["-I"]):
            paths = probe_module_files(flags + ["-c", STARTUP_PROBE])
            if paths is None:
                warn("could not list the modules a bare start imports: the distill cannot lay out "
                     "the stdlib directory without them", self.warnings)
                return []
            loaded |= stdlib_pycs(paths, python["stdlib"])
        names = {HOOK_MODULE + ".pyc"}
        compiled = self.root.host(python["stdlib"])
        for name in loaded:
            top = name.split("/", 1)[0]
            if "/" not in name or top == "encodings":
                names.add(name)
                continue
            for current, _, files in os.walk(os.path.join(compiled, top)):
                for f in files:
                    relative = os.path.relpath(os.path.join(current, f), compiled)
                    names.add(relative.replace(os.sep, "/"))
        return sorted(names)

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
        carried = with_real_paths(self.root.carried)
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
