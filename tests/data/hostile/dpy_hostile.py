"""A hostile source image's hook, for dpy's tests (tests/hostile.rs). Never ship it.

scripts/testbed-hostile copies this module and dpy-hostile.pth (which imports it) into
the site directory of the test bed's Debian source, with the class of attack in
/etc/dpy-hostile-class. Every interpreter start imports it; it does nothing unless the
interpreter runs dpy's gather stage (`python3 /opt/dpy/gather.py CONFIG /dpy-out`, as
root inside BuildKit). There, at exit, once the gather stage has written its manifest,
it tampers with /dpy-out as its class says and writes manifest.json again, so that the
manifest matches the tampered tree: dpy cannot tell the two apart by the manifest.

The host paths it aims at are all under /var/tmp/dpy-hostile-canary/<class>/, where the
test puts canary files of random content first. Python 3.9 syntax, stdlib only; nothing
but sys is imported unless the gather stage runs (a bare start's modules are listed by
the gather stage itself).
"""

import sys

OUT = "/dpy-out"
CANARY = "/var/tmp/dpy-hostile-canary"
# Enough `..` to climb from any temporary directory dpy unpacks into up to /.
CLIMB = "../" * 16
CLASS_FILE = "/etc/dpy-hostile-class"

# What the `escapes` class prints: a window title (OSC 0), clear screen (CSI 2J), an OSC 8
# hyperlink, a carriage return, a right-to-left override (U+202E) and C1's CSI (U+009B).
ESCAPES = ("\x1b]0;pwned\x07" "\x1b[2J"
           "\x1b]8;;https://example.invalid/\x1b\\click\x1b]8;;\x1b\\"
           "\rover\u202egnp.exe\u009b31m")


def gathering():
    argv = getattr(sys, "argv", None) or []
    return len(argv) >= 3 and argv[0].endswith("gather.py") and argv[2] == OUT


def out(*parts):
    import os
    return os.path.join(OUT, *parts)


def in_root(path):
    return out("root", path.lstrip("/"))


def canary(name, climbing=False):
    """The host path CANARY/<class>/<name>; climbing: as a path relative to wherever
    dpy unpacks the export, climbing to / first."""
    path = "%s/%s/%s" % (CANARY, the_class(), name)
    return CLIMB + path.lstrip("/") if climbing else path


def the_class():
    with open(CLASS_FILE) as f:
        return f.read().strip()


def load(name):
    import json
    with open(out(name)) as f:
        return json.load(f)


def dump(name, value):
    import json
    with open(out(name), "w") as f:
        json.dump(value, f, indent=1, sort_keys=True)


def replace_with_link(path, target):
    import os
    import shutil
    if os.path.islink(path) or os.path.isfile(path):
        os.remove(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.symlink(target, path)


def rewrite_manifest():
    """manifest.json again, over the tampered tree, by the gather stage's own function
    (the hook runs in the same interpreter). Without it loaded the gather stage did not
    get as far as its manifest, and dpy refuses the export anyway."""
    gather = sys.modules.get("dpy_gather.gather")
    if gather is not None and hasattr(gather, "write_manifest"):
        gather.write_manifest(OUT)


# --- the classes ----------------------------------------------------------------------


def write_link():
    """dpy writes /etc/passwd and /etc/group into the root: through these links it would
    write host files."""
    replace_with_link(in_root("/etc/passwd"), canary("passwd"))
    replace_with_link(in_root("/etc/group"), canary("group", climbing=True))


def read_link():
    """A stdlib module, a stdlib package and the ensurepip stub package, all of which go
    into the stdlib zip, replaced by links to a host file and host directories: dpy
    would read them into the image."""
    stdlib = load("layout.json")["python"]["stdlib"]
    replace_with_link(in_root(stdlib + "/json/tool.pyc"), canary("secret"))
    replace_with_link(in_root(stdlib + "/xmlrpc"), canary("package", climbing=True))
    replace_with_link(out("stubs", "ensurepip"), canary("stub"))


def layout_path():
    """The stdlib directory dpy zips (and empties) named as a host directory; the zip's
    other lists with entries that climb."""
    layout = load("layout.json")
    layout["python"]["stdlib"] = "/" + canary("stdlib", climbing=True)
    layout["stdlib_keep_out"].append(canary("keep-out", climbing=True))
    layout["hot"].append(canary("hot.pyc", climbing=True))
    dump("layout.json", layout)


def layout_zip():
    """The stdlib zip dpy writes, and a directory it makes, named as host paths."""
    layout = load("layout.json")
    layout["python"]["stdlib_zip"] = "/" + canary("python311-stdlib.zip", climbing=True)
    layout["python"]["purelib"] = "/" + canary("made-by-dpy", climbing=True)
    dump("layout.json", layout)


def stdlib_json():
    """stdlib.json's sources named as host files, absolute and climbing. Only the platform
    that copies its sources (compile false: the emulated one) is poisoned: dpy fills that
    one's stdlib from the native platform's bytecode, reading, compiling and removing each
    source stdlib.json lists (src/bytecode.rs)."""
    import hashlib
    listed = load("stdlib.json")
    if listed.get("compiled", True):
        return
    digest = hashlib.sha256(b"dpy-hostile").hexdigest()
    listed["files"][canary("secret.py")] = digest
    listed["files"][canary("climb.py", climbing=True)] = digest
    dump("stdlib.json", listed)


def hard_link():
    """Hard links. /etc/passwd, which dpy writes, made a second name of a symlink to a host
    file (opasswd); a hard link to a file outside /dpy-out (the source's /etc/shadow);
    and a second name for that one inside /dpy-out. BuildKit's COPY keeps only hard
    links between regular files inside the copy: the export holds two symlinks, a
    regular file and a hard link entry to it."""
    import os
    link = in_root("/etc/opasswd")
    os.symlink(canary("passwd"), link)
    os.link(link, in_root("/etc/passwd"), follow_symlinks=False)
    copy = in_root("/etc/shadow-copy")
    os.link("/etc/shadow", copy)
    os.link(copy, in_root("/etc/shadow-copy2"))


def setuid():
    """Copies of dash, one setuid root, one setgid."""
    import os
    import shutil
    dash = os.path.realpath("/bin/dash")
    for name, mode in (("su-dash", 0o4755), ("sg-dash", 0o2755)):
        path = in_root("/usr/bin/" + name)
        shutil.copy2(dash, path)
        os.chmod(path, mode)


def device():
    """A character device node (1, 3: the null device) in the root."""
    import os
    import stat
    os.mknod(in_root("/usr/lib/dpy-hostile-null"), stat.S_IFCHR | 0o666, os.makedev(1, 3))


def entrypoint():
    """An entrypoint that closes the runtime Dockerfile's ENTRYPOINT line and adds steps
    of its own: the image runs as root and a RUN step writes a file (with dash's echo:
    the runtime root has no touch). No `/` after the first line: the entrypoint's
    directory goes into the Dockerfile's PATH too, and must not break it."""
    layout = load("layout.json")
    layout["python"]["entrypoint"] = ('/usr/bin/python3"]\nUSER 0\nRUN echo pwned > pwned\n'
                                      'ENTRYPOINT ["python3')
    dump("layout.json", layout)


# A file larger than an ordinary export (about 40 MB) and more entries than it has
# (about 2,500); tests/hostile.rs sets dpy's limits between the two.
BIG_FILE_BYTES = 64 * 1024 * 1024
MANY_FILES = 6000


def oversized():
    """A large file (sparse in the container, whole in the export) and many small ones."""
    import os
    directory = in_root("/usr/share/dpy-hostile")
    os.makedirs(os.path.join(directory, "many"), exist_ok=True)
    with open(os.path.join(directory, "big"), "wb") as f:
        f.truncate(BIG_FILE_BYTES)
    for i in range(MANY_FILES):
        open(os.path.join(directory, "many", str(i)), "w").close()


def escapes_say(when):
    """Terminal escapes on stdout and stderr, in a plain line and in a DPY-WARN line,
    and C1's CSI as a bare byte (not UTF-8)."""
    sys.stdout.write("dpy-hostile %s: %s end\n" % (when, ESCAPES))
    sys.stdout.flush()
    sys.stderr.write("DPY-WARN dpy-hostile %s: %s end\n" % (when, ESCAPES))
    sys.stderr.flush()
    sys.stderr.buffer.write(b"dpy-hostile " + when.encode() + b": bare C1 \x9b2J end\n")
    sys.stderr.buffer.flush()


TAMPER = {
    "write-link": write_link,
    "read-link": read_link,
    "layout-path": layout_path,
    "layout-zip": layout_zip,
    "stdlib-json": stdlib_json,
    "hard-link": hard_link,
    "setuid": setuid,
    "device": device,
    "entrypoint": entrypoint,
    "oversized": oversized,
    "escapes": lambda: escapes_say("at exit"),
}


def at_exit():
    import os
    # Only over a finished gather: a failed one has no manifest to match.
    if not os.path.exists(out("manifest.json")):
        return
    kind = the_class()
    TAMPER[kind]()
    if kind != "escapes":
        rewrite_manifest()


if gathering():
    import atexit
    atexit.register(at_exit)
    if the_class() == "escapes":
        escapes_say("at start")
