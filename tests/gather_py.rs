//! The gather stage's package (templates/context/dpy_gather) run by this machine's own
//! Python: the ELF reader, Root's copies and symlinks, the dpkg and apk records, the
//! loader's search, chroot-pip's graft and the entry script. No engine needed: each test
//! runs a short snippet importing the package from the source tree, which prints what it
//! found as one line of JSON for the test to compare.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{json, Value};

const CONTEXT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/templates/context");

/// Debian's own interpreter where there is one: a pyenv shim may come first on PATH.
fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

fn run(snippet: &str, args: &[&str]) -> Output {
    Command::new(python())
        .arg("-c")
        .arg(snippet)
        .args(args)
        .env("PYTHONPATH", CONTEXT)
        // No __pycache__ in the source tree.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap()
}

/// The last line the snippet printed, as JSON; the snippet must succeed.
fn json_of(snippet: &str, args: &[&str]) -> Value {
    let out = run(snippet, args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap()
}

/// A temporary directory by its real path: Root copies and compares real paths.
fn temp() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().canonicalize().unwrap().display().to_string();
    (dir, path)
}

/// This machine's ELF machine number and glibc loader, or None where the test does not
/// know them (the reader still runs; only these two values go unchecked).
fn host_loader() -> Option<(u64, &'static str)> {
    match std::env::consts::ARCH {
        "x86_64" => Some((62, "/lib64/ld-linux-x86-64.so.2")),
        "aarch64" => Some((183, "/lib/ld-linux-aarch64.so.1")),
        _ => None,
    }
}

/// Python that writes a minimal ELF file with what the reader looks at: one PT_LOAD
/// mapping the whole file at 0x10000 (so DT_STRTAB, an address, is not its offset),
/// PT_INTERP and PT_DYNAMIC, in either class and byte order.
const MAKE_ELF: &str = r##"
import struct
def make_elf(path, elf_class=2, order="<", machine=62, interp=None, needed=(), rpath=None, runpath=None):
    base, wide = 0x10000, elf_class == 2
    ehsize, phentsize = (64, 56) if wide else (52, 32)
    strtab = bytearray(b"\0")
    def string(text):
        at = len(strtab)
        strtab.extend(text.encode() + b"\0")
        return at
    entries = [(1, string(n)) for n in needed]
    if rpath is not None:
        entries.append((15, string(rpath)))
    if runpath is not None:
        entries.append((29, string(runpath)))
    interp_bytes = interp.encode() + b"\0" if interp else b""
    interp_off = ehsize + 3 * phentsize
    strtab_off = interp_off + len(interp_bytes)
    dyn_off = (strtab_off + len(strtab) + 7) // 8 * 8
    entries = [(5, base + strtab_off)] + entries + [(0, 0)]
    dyn = b"".join(struct.pack(order + ("qQ" if wide else "iI"), t, v) for t, v in entries)
    size = dyn_off + len(dyn)
    def ph(kind, off, filesz):
        if wide:
            return struct.pack(order + "IIQQQQQQ", kind, 5, off, base + off, base + off, filesz, filesz, 8)
        return struct.pack(order + "IIIIIIII", kind, off, base + off, base + off, filesz, filesz, 5, 4)
    heads = ph(1, 0, size) + (ph(3, interp_off, len(interp_bytes)) if interp else ph(4, 0, 0)) + ph(2, dyn_off, len(dyn))
    header = struct.pack(order + ("HHIQQQIHHHHHH" if wide else "HHIIIIIHHHHHH"),
                         3, machine, 1, 0, ehsize, 0, 0, ehsize, phentsize, 3, 0, 0, 0)
    ident = b"\x7fELF" + bytes([elf_class, 1 if order == "<" else 2, 1]) + b"\0" * 9
    data = ident + header + heads + interp_bytes + bytes(strtab)
    data += b"\0" * (dyn_off - len(data)) + dyn
    with open(path, "wb") as f:
        f.write(data)
"##;

fn with_make_elf(snippet: &str) -> String {
    format!("{MAKE_ELF}\n{snippet}")
}

#[test]
fn elf_reader_reads_this_machines_binaries() {
    let snippet = r##"
import json, os, sys
from dpy_gather.elf import Elf
def fields(path):
    elf = Elf.read(path)
    return elf and [elf.elf_class, elf.machine, elf.interp, elf.needed, elf.rpath, elf.runpath]
text, short = sys.argv[1] + "/text", sys.argv[1] + "/short"
with open(text, "w") as f:
    f.write("#!/bin/sh\n" * 20)
with open(short, "wb") as f:
    f.write(b"\x7fELF\x02\x01\x01")
print(json.dumps({"python": fields(os.path.realpath(sys.executable)), "ls": fields("/bin/ls"),
                  "text": fields(text), "short": fields(short), "missing": fields(sys.argv[1] + "/none")}))
"##;
    let (_dir, tmp) = temp();
    let got = json_of(snippet, &[&tmp]);
    assert_eq!(got["text"], Value::Null, "a script is no ELF");
    assert_eq!(
        got["short"],
        Value::Null,
        "a file shorter than a header is no ELF"
    );
    assert_eq!(got["missing"], Value::Null);
    // Class and machine straight from the header bytes: EI_CLASS, and e_machine in the
    // machine's own byte order.
    let head = std::fs::read("/bin/ls").unwrap();
    let class = u64::from(head[4]);
    let machine = u64::from(if head[5] == 1 {
        u16::from_le_bytes([head[18], head[19]])
    } else {
        u16::from_be_bytes([head[18], head[19]])
    });
    for name in ["python", "ls"] {
        let elf = got[name]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: {got}"));
        assert_eq!(elf[0], class, "{name}: class");
        assert_eq!(elf[1], machine, "{name}: machine");
        if let Some((number, loader)) = host_loader() {
            assert_eq!(elf[1], number, "{name}: machine");
            assert_eq!(elf[2], loader, "{name}: PT_INTERP");
        }
        let needed = elf[3].as_array().unwrap();
        assert!(needed.contains(&json!("libc.so.6")), "{name}: {needed:?}");
    }
    assert_eq!(got["ls"][4], json!([]), "no DT_RPATH");
    assert_eq!(got["ls"][5], json!([]), "no DT_RUNPATH");
}

#[test]
fn elf_reader_maps_dt_strtab_in_both_classes_and_byte_orders() {
    let snippet = with_make_elf(
        r##"
import json, sys
from dpy_gather.elf import Elf
out = {}
for name, elf_class, order, machine in (("64le", 2, "<", 62), ("32be", 1, ">", 8)):
    path = "%s/%s" % (sys.argv[1], name)
    make_elf(path, elf_class, order, machine, interp="/lib/ld-test.so.1", needed=["libone.so.1", "libtwo.so.2"],
             rpath="/opt/a:$ORIGIN/../lib", runpath="${ORIGIN}/x")
    elf = Elf.read(path)
    out[name] = [elf.elf_class, elf.machine, elf.interp, elf.needed, elf.rpath, elf.runpath]
bare = sys.argv[1] + "/bare"
make_elf(bare)
elf = Elf.read(bare)
out["bare"] = [elf.elf_class, elf.machine, elf.interp, elf.needed, elf.rpath, elf.runpath]
print(json.dumps(out))
"##,
    );
    let (_dir, tmp) = temp();
    let got = json_of(&snippet, &[&tmp]);
    let strings = json!([
        "/lib/ld-test.so.1",
        ["libone.so.1", "libtwo.so.2"],
        ["/opt/a", "$ORIGIN/../lib"],
        ["${ORIGIN}/x"]
    ]);
    let mut want64 = vec![json!(2), json!(62)];
    want64.extend(strings.as_array().unwrap().iter().cloned());
    let mut want32 = vec![json!(1), json!(8)];
    want32.extend(strings.as_array().unwrap().iter().cloned());
    assert_eq!(got["64le"], json!(want64));
    assert_eq!(got["32be"], json!(want32));
    assert_eq!(got["bare"], json!([2, 62, null, [], [], []]));
}

#[test]
fn root_recreates_the_symlinks_along_a_copied_path() {
    let snippet = r##"
import json, os, sys
from dpy_gather.root import Root
t = sys.argv[1]
src = t + "/src"
os.makedirs(src + "/real/dir/sub")
for name in ("real/dir/file", "real/dir/sub/inner"):
    with open(src + "/" + name, "w") as f:
        f.write(name)
os.symlink("real", src + "/rel")
os.symlink(src + "/real", src + "/abs")
os.symlink("file", src + "/real/dir/alias")
root = Root(t + "/out")
os.makedirs(root.path)
root.copy(src + "/rel/dir/file")
root.copy(src + "/abs/dir/alias")
root.copy(src + "/real/dir/missing")
root.ensure_dir(src + "/rel/made/here")
root.copy(src + "/real/dir/sub")
def describe(path):
    if os.path.islink(path):
        return "-> " + os.readlink(path).replace(t, "$T")
    if os.path.isdir(path):
        return "dir"
    with open(path) as f:
        return "file " + f.read()
tree = {}
for current, dirs, files in os.walk(root.path + src):
    for name in dirs + files:
        path = os.path.join(current, name)
        tree[os.path.relpath(path, root.path + src)] = describe(path)
print(json.dumps({"tree": tree, "carried": sorted(p.replace(t, "$T") for p in root.carried)}))
"##;
    let (_dir, tmp) = temp();
    let got = json_of(snippet, &[&tmp]);
    assert_eq!(
        got["tree"],
        json!({
            "rel": "-> real",
            "abs": "-> $T/src/real",
            "real": "dir",
            "real/dir": "dir",
            "real/dir/file": "file real/dir/file",
            "real/dir/alias": "-> file",
            "real/made": "dir",
            "real/made/here": "dir",
            "real/dir/sub": "dir",
            "real/dir/sub/inner": "file real/dir/sub/inner",
        }),
        "each link along a path is recreated as it reads; a missing path copies nothing"
    );
    assert_eq!(
        got["carried"],
        json!([
            "$T/src/abs",
            "$T/src/real/dir/alias",
            "$T/src/real/dir/file",
            "$T/src/real/dir/sub/inner",
            "$T/src/rel",
        ])
    );
}

#[test]
fn root_resolve_follows_the_roots_own_links() {
    let snippet = r##"
import json, os, sys
from dpy_gather.root import Root
t = sys.argv[1]
root = Root(t + "/root")
for d in ("usr/lib64", "usr/lib/x", "etc/ssl/certs", "opt/app/bin"):
    os.makedirs(root.host("/" + d))
os.symlink("/usr/lib64", root.host("/lib64"))
os.symlink("usr/lib", root.host("/lib"))
os.symlink("../lib/x", root.host("/usr/lib64/y"))
os.symlink("/opt/app/bin", root.host("/etc/ssl/certs/app"))
os.symlink("loop", root.host("/opt/loop"))
answers = {}
for path in ("/lib64/ld.so", "/lib/x/libz.so", "/lib64/y/libz.so", "/etc/ssl/certs/app/../bin/tool",
             "/usr/lib/../lib64/f", "/", "/opt/loop/f"):
    answers[path] = root.resolve(path).replace(t, "$T")
print(json.dumps(answers))
"##;
    let (_dir, tmp) = temp();
    let got = json_of(snippet, &[&tmp]);
    assert_eq!(
        got,
        json!({
            // absolute: the root's /usr/lib64, never the host's
            "/lib64/ld.so": "$T/root/usr/lib64/ld.so",
            // relative, from the link's own directory
            "/lib/x/libz.so": "$T/root/usr/lib/x/libz.so",
            // a link within a link's target
            "/lib64/y/libz.so": "$T/root/usr/lib/x/libz.so",
            "/etc/ssl/certs/app/../bin/tool": "$T/root/opt/app/bin/tool",
            "/usr/lib/../lib64/f": "$T/root/usr/lib64/f",
            "/": "$T/root/",
            // a loop stops after 40 hops, at the link
            "/opt/loop/f": "$T/root/opt/loop",
        })
    );
}

#[test]
fn compile_all_gives_the_same_bytecode_and_failures_on_any_number_of_processes() {
    // The gather compiles the stdlib on every CPU (forked processes): what it writes and
    // what it reports must not depend on how many there are, and a module that does not
    // compile is reported by its index, not lost in a child.
    let snippet = r##"
import hashlib, json, os, sys
from dpy_gather.compile import compile_all
t = sys.argv[1]
os.makedirs(t + "/src")
sources = []
for i in range(100):
    name = "m%03d.py" % i
    with open(t + "/src/" + name, "w") as f:
        f.write("def f():\n    return %d\n" % i if i not in (7, 93) else "def broken(:\n")
    sources.append(name)
answers = {}
for workers in (1, 2, 3):
    out = "%s/out%d" % (t, workers)
    os.makedirs(out)
    jobs = [(t + "/src/" + n, out + "/" + n[:-3] + ".pyc", "/zip/" + n, n) for n in sources]
    failed = compile_all(jobs, workers)
    digests = {}
    for n in sorted(os.listdir(out)):
        with open(out + "/" + n, "rb") as f:
            digests[n] = hashlib.sha256(f.read()).hexdigest()
    answers[workers] = {"failed": sorted(failed), "written": digests}
print(json.dumps(answers))
"##;
    let (_dir, tmp) = temp();
    let got = json_of(snippet, &[&tmp]);
    assert_eq!(got["1"]["failed"], json!([7, 93]), "{got}");
    assert_eq!(got["1"]["written"].as_object().unwrap().len(), 98);
    assert_eq!(got["1"], got["2"]);
    assert_eq!(got["1"], got["3"]);
}

#[test]
fn realpaths_answers_as_os_path_realpath() {
    // Links of every kind on the way and at the end: a directory link (merged /usr), a
    // relative and an absolute leaf link, a chain, a dangling link, a loop, and names
    // that do not exist. The answer must be os.path.realpath's, path for path.
    let snippet = r##"
import json, os, sys
from dpy_gather.realpaths import RealPaths
t = sys.argv[1]
os.makedirs(t + "/usr/lib/x")
os.makedirs(t + "/usr/share/zoneinfo/Europe")
os.symlink("usr/lib", t + "/lib")
os.symlink(t + "/usr/share/zoneinfo", t + "/zones")
open(t + "/usr/lib/x/libfoo.so.1.2", "w").close()
open(t + "/usr/share/zoneinfo/Europe/Berlin", "w").close()
os.symlink("libfoo.so.1.2", t + "/usr/lib/x/libfoo.so.1")
os.symlink("libfoo.so.1", t + "/usr/lib/x/libfoo.so")
os.symlink("/nowhere/at/all", t + "/usr/lib/x/dangling")
os.symlink("loop-b", t + "/usr/lib/x/loop-a")
os.symlink("loop-a", t + "/usr/lib/x/loop-b")
os.symlink("Europe/Berlin", t + "/usr/share/zoneinfo/CET")
os.symlink(".", t + "/usr/share/zoneinfo/posix")
os.symlink("../lib/x/libfoo.so", t + "/usr/share/up")
os.symlink("zoneinfo/posix/../CET", t + "/usr/share/through-a-link")
os.symlink("/lib/../usr/share/zoneinfo/CET", t + "/usr/share/absolute")
paths = []
for current, dirs, files in os.walk(t):
    for name in dirs + files:
        paths.append(os.path.join(current, name))
paths += [t + "/lib/x/libfoo.so", t + "/usr/share/absolute", t + "/lib/x/missing", t + "/zones/posix/CET", t + "/zones/posix/posix/Europe/Berlin",
          t + "/missing/dir/file", t + "/lib/x/libfoo.so.1.2/below-a-file", t + "/.", "/"]
real = RealPaths()
print(json.dumps([[p, real(p), os.path.realpath(p)] for p in sorted(paths)]))
"##;
    let (_dir, tmp) = temp();
    let got = json_of(snippet, &[&tmp]);
    let rows = got.as_array().unwrap();
    assert!(rows.len() > 20, "{got}");
    for row in rows {
        assert_eq!(
            row[1], row[2],
            "RealPaths()({}) is not os.path.realpath's",
            row[0]
        );
    }
}

#[test]
fn dpkg_records_name_the_carried_files_but_no_directory() {
    let snippet = r##"
import json, os, sys
from dpy_gather import pkgdb
t = sys.argv[1]
fs = t + "/fs"
os.makedirs(fs + "/usr/lib/x")
os.makedirs(fs + "/usr/share/doc")
os.symlink("usr/lib", fs + "/lib")
for name in ("usr/lib/x/libfoo.so.1.2", "usr/lib/x/libbar.so.2", "usr/share/doc/foo"):
    open(fs + "/" + name, "w").close()
os.symlink("libfoo.so.1.2", fs + "/usr/lib/x/libfoo.so.1")
info = t + "/info"
os.makedirs(info)
lists = {
    "libfoo1:amd64": ["/usr", "/usr/lib", "/usr/lib/x", "/usr/lib/x/libfoo.so.1.2", "/usr/lib/x/libfoo.so.1",
                      "/usr/share/doc/foo"],
    "libbar2": ["/lib", "/lib/x", "/lib/x/libbar.so.2"],
    "bash": ["/lib", "/bin/bash"],
}
for name, paths in lists.items():
    with open("%s/%s.list" % (info, name), "w") as f:
        f.write("".join(fs + p + "\n" for p in paths) + "\n")
status = t + "/status"
with open(status, "w") as f:
    f.write("Package: bash\nStatus: install ok installed\nVersion: 5.2\n\n"
            "Package: libbar2\nStatus: install ok installed\nArchitecture: all\n\n"
            "Status: install ok installed\nPackage: libfoo1\nArchitecture: amd64\nVersion: 1.2\n\n"
            "Package: libfoo1-dev\nStatus: install ok installed\n")
# The carried files as Root records them: the libfoo link, the real libbar (reached
# through /lib in its .list) and the /lib link itself.
carried = {fs + "/usr/lib/x/libfoo.so.1", fs + "/usr/lib/x/libbar.so.2", fs + "/lib"}
pkgdb.DPKG_INFO = info  # dpkg_owners reads this system's database
owners = pkgdb.dpkg_owners(carried)
print(json.dumps({
    "owners": {name: [p.replace(fs, "$FS") for p in paths] for name, paths in owners.items()},
    "stanzas": pkgdb.dpkg_stanzas({"libfoo1", "libbar2"}, status),
    "none": pkgdb.dpkg_stanzas(set(), status),
}))
"##;
    let (_dir, tmp) = temp();
    let got = json_of(snippet, &[&tmp]);
    assert_eq!(
        got["owners"],
        json!({
            "libfoo1:amd64": ["$FS/usr/lib/x/libfoo.so.1"],
            "libbar2": ["$FS/lib/x/libbar.so.2"],
        }),
        "a listed path counts through its real path; directories (even carried links) never do"
    );
    assert_eq!(
        got["stanzas"],
        json!([
            "Package: libbar2\nStatus: install ok installed\nArchitecture: all",
            "Status: install ok installed\nPackage: libfoo1\nArchitecture: amd64\nVersion: 1.2",
        ]),
        "the status file's stanzas of those packages, in its order"
    );
    assert_eq!(got["none"], json!([]));
}

#[test]
fn apk_records_name_the_packages_owning_carried_files() {
    let snippet = r##"
import json, sys
from dpy_gather.pkgdb import apk_stanzas
installed = sys.argv[1] + "/installed"
with open(installed, "w") as f:
    f.write("C:Q1abc=\nP:musl\nV:1.2.5-r0\nF:lib\nR:ld-musl-x86_64.so.1\nR:libc.musl-x86_64.so.1\n\n"
            "P:busybox\nV:1.36.1-r29\nF:bin\nR:busybox\nF:etc\nR:passwd\n\n"
            "P:libffi\nV:3.4.6-r0\nF:usr/lib\nR:libffi.so.8\nR:libffi.so.8.1.4\n\n\n")
carried = {"/lib/ld-musl-x86_64.so.1", "/usr/lib/libffi.so.8.1.4", "/etc/dpy-not-passwd"}
names, stanzas = apk_stanzas(carried, installed)
print(json.dumps({"names": names, "stanzas": stanzas, "nothing": apk_stanzas(set(), installed)}))
"##;
    let (_dir, tmp) = temp();
    let got = json_of(snippet, &[&tmp]);
    assert_eq!(got["names"], json!(["musl", "libffi"]));
    assert_eq!(
        got["stanzas"],
        json!([
            "C:Q1abc=\nP:musl\nV:1.2.5-r0\nF:lib\nR:ld-musl-x86_64.so.1\nR:libc.musl-x86_64.so.1",
            "P:libffi\nV:3.4.6-r0\nF:usr/lib\nR:libffi.so.8\nR:libffi.so.8.1.4",
        ]),
        "a file is F:'s directory joined with R:"
    );
    assert_eq!(got["nothing"], json!([[], []]));
}

/// The package database table, which src/distill/sbom.rs runs too.
#[test]
fn package_databases_are_read_by_the_shared_table() {
    let cases: Value = serde_json::from_str(include_str!("data/package_db_cases.json")).unwrap();
    let snippet = r##"
import json, sys
from dpy_gather import pkgdb
cases = json.loads(sys.argv[1])
print(json.dumps({kind: [[record for _, record in read(case["text"])] for case in cases[kind]]
                  for kind, read in (("dpkg", pkgdb.dpkg_records), ("apk", pkgdb.apk_records))}))
"##;
    let got = json_of(snippet, &[&cases.to_string()]);
    for kind in ["dpkg", "apk"] {
        for (i, case) in cases[kind].as_array().unwrap().iter().enumerate() {
            assert_eq!(got[kind][i], case["records"], "{kind}: {}", case["why"]);
        }
    }
}

/// The loader rule's table, which src/distill/elf.rs runs too.
fn loader_cases() -> Value {
    serde_json::from_str(include_str!("data/loader_cases.json")).unwrap()
}

#[test]
fn musl_answers_for_its_own_libc_names() {
    let cases = loader_cases()["musl_reserved"].clone();
    let snippet = r##"
import json, sys
from dpy_gather.probe import musl_reserved
print(json.dumps([[name, musl_reserved(name)] for name, _ in json.loads(sys.argv[1])]))
"##;
    let got = json_of(snippet, &[&cases.to_string()]);
    assert_eq!(got, cases);
}

#[test]
fn the_search_order_follows_the_shared_table() {
    // Elf.read splits DT_RPATH and DT_RUNPATH at ':' as it reads them; the table holds
    // the strings as in the file.
    let cases = loader_cases()["search_order"].clone();
    let snippet = r##"
import json, sys
from dpy_gather.probe import search_order
split = lambda entries: [part for entry in entries for part in entry.split(":")]
print(json.dumps([search_order(split(c["rpath"]), split(c["runpath"]), c["origin"], c["defaults"])
                  for c in json.loads(sys.argv[1])]))
"##;
    let got = json_of(snippet, &[&cases.to_string()]);
    let want: Vec<Value> = cases
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["dirs"].clone())
        .collect();
    assert_eq!(got, json!(want));
}

#[test]
fn the_loader_searches_ld_so_conf_then_the_default_dirs() {
    let snippet = r##"
import json, os, sys, types
from dpy_gather import probe
t = sys.argv[1]
os.makedirs(t + "/conf.d/deeper")
def write(path, text):
    with open(t + "/" + path, "w") as f:
        f.write(text)
write("ld.so.conf", "# comment\ninclude %s/conf.d/*.conf\n/opt/first # trailing\nrelative/ignored\n\n" % t)
write("conf.d/b.conf", "/opt/b\ninclude %s/conf.d/deeper/*.conf\n" % t)
write("conf.d/a.conf", "  /opt/a  \n")
write("conf.d/c.txt", "/opt/not-a-conf\n")
write("conf.d/deeper/d.conf", "/opt/d\n")
write("loop.conf", "/opt/loop\ninclude %s/loop.conf\n" % t)
out = {"conf": probe.ld_so_conf(t + "/ld.so.conf"), "missing": probe.ld_so_conf(t + "/none"),
       "loop": len(probe.ld_so_conf(t + "/loop.conf"))}
# search_dirs reads this system's /etc/ld.so.conf and /etc/ld-musl-*.path: give it others.
asked = []
probe.ld_so_conf = lambda path, depth=0: asked.append(path) or ["/usr/local/lib", "/usr/lib/x-gnu", "/usr/local/lib"]
out["glibc"] = probe.search_dirs("glibc", "x-gnu")
out["glibc_no_multiarch"] = probe.search_dirs("glibc", None)
out["asked"] = asked
write("ld-musl-b.path", "/second\n")
write("ld-musl-a.path", "/lib\n/usr/local/lib:/usr/lib\n\n")
probe.glob = types.SimpleNamespace(glob=lambda pattern: [t + "/ld-musl-b.path", t + "/ld-musl-a.path"]
                                   if pattern == "/etc/ld-musl-*.path" else [])
out["musl"] = probe.search_dirs("musl", None)
probe.glob = types.SimpleNamespace(glob=lambda pattern: [])
out["musl_default"] = probe.search_dirs("musl", None)
print(json.dumps(out))
"##;
    let (_dir, tmp) = temp();
    let got = json_of(snippet, &[&tmp]);
    assert_eq!(
        got["conf"],
        json!(["/opt/a", "/opt/b", "/opt/d", "/opt/first"]),
        "includes in place and sorted, comments and relative lines dropped"
    );
    assert_eq!(got["missing"], json!([]));
    assert_eq!(got["loop"], json!(9), "an include loop stops below depth 9");
    assert_eq!(
        got["glibc"],
        json!([
            "/usr/local/lib",
            "/usr/lib/x-gnu",
            "/lib/x-gnu",
            "/lib64",
            "/usr/lib64",
            "/lib",
            "/usr/lib"
        ]),
        "ld.so.conf first, then the multiarch and default dirs, each once"
    );
    assert_eq!(
        got["glibc_no_multiarch"],
        json!([
            "/usr/local/lib",
            "/usr/lib/x-gnu",
            "/lib64",
            "/usr/lib64",
            "/lib",
            "/usr/lib"
        ])
    );
    assert_eq!(got["asked"], json!(["/etc/ld.so.conf", "/etc/ld.so.conf"]));
    assert_eq!(
        got["musl"],
        json!(["/lib", "/usr/local/lib", "/usr/lib"]),
        "the first path file in sorted order, split on newlines and colons"
    );
    assert_eq!(
        got["musl_default"],
        json!(["/lib", "/usr/local/lib", "/usr/lib"])
    );
}

#[test]
fn resolve_library_follows_rpath_runpath_origin_and_class() {
    let snippet = with_make_elf(
        r##"
import json, os, sys
from dpy_gather.elf import Elf
from dpy_gather.probe import resolve_library
t = sys.argv[1]
for d in ("rpath", "runpath", "origin/lib", "default1", "default2", "wrong"):
    os.makedirs(t + "/" + d)
make_elf(t + "/rpath/libr.so.1")
make_elf(t + "/rpath/libboth.so.1")
make_elf(t + "/runpath/libboth.so.1")
make_elf(t + "/origin/lib/libo.so.1")
make_elf(t + "/default1/libclass.so.1", elf_class=1, machine=62)
make_elf(t + "/default1/libmachine.so.1", machine=183)
with open(t + "/default1/libtext.so.1", "w") as f:
    f.write("INPUT(libtext.so.2)\n" * 8)
for name in ("libclass.so.1", "libmachine.so.1", "libtext.so.1", "libd.so.1"):
    make_elf(t + "/default2/" + name)
defaults = [t + "/default1", t + "/default2"]
def elf(rpath=(), runpath=()):
    return Elf(2, 62, None, [], list(rpath), list(runpath))
def find(name, e, origin=t + "/origin"):
    found = resolve_library(name, e, origin, defaults)
    return found and found.replace(t, "$T")
print(json.dumps({
    "rpath": find("libr.so.1", elf(rpath=[t + "/rpath"])),
    "runpath_wins": find("libboth.so.1", elf(rpath=[t + "/rpath"], runpath=[t + "/runpath"])),
    "rpath_ignored": find("libr.so.1", elf(rpath=[t + "/rpath"], runpath=[t + "/runpath"])),
    "origin": find("libo.so.1", elf(runpath=["$ORIGIN/lib"])),
    "origin_braces": find("libo.so.1", elf(rpath=["", "${ORIGIN}/lib"])),
    "class": find("libclass.so.1", elf()),
    "machine": find("libmachine.so.1", elf()),
    "not_elf": find("libtext.so.1", elf()),
    "default": find("libd.so.1", elf()),
    "nowhere": find("libnowhere.so.1", elf()),
    "path": find(t + "/rpath/libr.so.1", elf()),
    "path_missing": find(t + "/rpath/libnone.so.1", elf()),
}))
"##,
    );
    let (_dir, tmp) = temp();
    let got = json_of(&snippet, &[&tmp]);
    assert_eq!(
        got,
        json!({
            "rpath": "$T/rpath/libr.so.1",
            "runpath_wins": "$T/runpath/libboth.so.1",
            "rpath_ignored": null,
            "origin": "$T/origin/lib/libo.so.1",
            "origin_braces": "$T/origin/lib/libo.so.1",
            "class": "$T/default2/libclass.so.1",
            "machine": "$T/default2/libmachine.so.1",
            "not_elf": "$T/default2/libtext.so.1",
            "default": "$T/default2/libd.so.1",
            "nowhere": null,
            "path": "$T/rpath/libr.so.1",
            "path_missing": null,
        })
    );
}

/// Graft's view of this machine: /bin/ls needs libselinux.so.1 (which needs
/// libpcre2-8.so.0, a soname link) and libc.so.6, all in /usr/lib/<multiarch>.
const GRAFT: &str = r##"
import contextlib, io, json, os, shutil, subprocess, sys, sysconfig
from dpy_gather.graft import graft
t, loader = sys.argv[1:3]
multiarch = sysconfig.get_config_var("MULTIARCH")
libdir = "/usr/lib/%s" % multiarch
if not os.path.isfile(libdir + "/libselinux.so.1"):
    print(json.dumps({"skip": "no %s/libselinux.so.1" % libdir}))
    sys.exit(0)
stage, build_root = t + "/stage", t + "/root"
os.makedirs(stage + "/usr/local/bin")
shutil.copy2(os.path.realpath("/bin/ls"), stage + "/usr/local/bin/ls")
# The runtime root has the C library already: present is all graft asks of it.
os.makedirs(build_root + libdir)
for name in ("libc.so.6", os.path.basename(loader)):
    open(build_root + libdir + "/" + name, "w").close()
dpkg = os.path.isfile("/var/lib/dpkg/status") and shutil.which("dpkg-query")
if dpkg:
    os.makedirs(build_root + "/var/lib/dpkg")
    with open(build_root + "/var/lib/dpkg/status", "w") as f:
        f.write("Package: dpy-test-base\nStatus: install ok installed\n")
printed = io.StringIO()
with contextlib.redirect_stdout(printed):
    failures = graft(stage, build_root)
out = {"failures": failures, "printed": printed.getvalue().splitlines(), "want": [], "libraries": []}
needer = "/usr/local/bin/ls"
grafted = []
for name in ("libselinux.so.1", "libpcre2-8.so.0"):
    real = os.path.realpath(libdir + "/" + name)
    link = os.path.join(os.path.dirname(real), name)
    out["want"].append("chroot-pip: grafted %s from the builder (%s), needed by %s" % (name, real, needer))
    needer = real
    with open(real, "rb") as a:
        same = os.path.isfile(stage + real) and not os.path.islink(stage + real) and \
            open(stage + real, "rb").read() == a.read()
    # The soname link, where the name is not the file's own: [what it reads, what it should].
    soname = [os.readlink(stage + link) if os.path.islink(stage + link) else None,
              os.path.basename(real)] if link != real else None
    out["libraries"].append({"path": real, "copied": same, "soname": soname})
    grafted += [real, link]
out["stage"] = sorted(os.path.relpath(os.path.join(c, n), stage) for c, _, ns in os.walk(stage) for n in ns)
if dpkg:
    # Who owns the grafted files, as dpkg itself says (a path or its /lib alias).
    owners = set()
    for path in grafted:
        for alias in (path, path[4:] if path.startswith("/usr/lib/") else path):
            query = subprocess.run(["dpkg-query", "-S", alias], stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, universal_newlines=True)
            owners.update(line.split(": ", 1)[0] for line in query.stdout.splitlines() if ": " in line)
    out["owners"] = sorted(owners)
    with open(stage + "/var/lib/dpkg/status") as f:
        out["status"] = f.read().split("\n\n")
print(json.dumps(out))
"##;

#[test]
fn graft_copies_what_the_stage_needs_and_the_root_lacks() {
    let Some((_, loader)) = host_loader() else {
        crate::common::cannot_test("gather_py::graft", "no known glibc loader for this machine");
        return;
    };
    let (_dir, tmp) = temp();
    let got = json_of(GRAFT, &[&tmp, loader]);
    if let Some(why) = got.get("skip") {
        crate::common::cannot_test("gather_py::graft", &why.to_string());
        return;
    }
    assert_eq!(got["failures"], 0, "{got}");
    let printed: Vec<&str> = got["printed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    let want: Vec<&str> = got["want"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(
        printed[..2],
        want[..],
        "libselinux for ls, then libpcre2 for libselinux; libc is in the root"
    );
    for library in got["libraries"].as_array().unwrap() {
        assert_eq!(
            library["copied"], true,
            "the builder's file itself: {library}"
        );
        if let Some(link) = library["soname"].as_array() {
            assert_eq!(
                link[0], link[1],
                "the soname link, next to the file: {library}"
            );
        }
    }
    let stage: Vec<&str> = got["stage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(
        !stage.iter().any(|p| p.contains("libc.so")),
        "nothing the root has is grafted: {stage:?}"
    );
    let Some(owners) = got.get("owners") else {
        crate::common::cannot_test(
            "gather_py::graft",
            "no dpkg on this machine: the records of a graft go unchecked",
        );
        return;
    };
    let owners: Vec<String> = owners
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap().to_string())
        .collect();
    assert!(!owners.is_empty(), "dpkg owns libselinux on this machine");
    let mut names: Vec<&str> = owners
        .iter()
        .map(|o| o.split(':').next().unwrap())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(
        printed[2..],
        [format!(
            "chroot-pip: recorded the packages of what it added: {}",
            names.join(", ")
        )
        .as_str()],
    );
    let status = got["status"].as_array().unwrap();
    assert_eq!(
        status[0], "Package: dpy-test-base\nStatus: install ok installed",
        "the root's own database comes first, as it was"
    );
    let mut recorded: Vec<&str> = status[1..]
        .iter()
        .map(|s| {
            let stanza = s.as_str().unwrap();
            let line = stanza.lines().find(|l| l.starts_with("Package:")).unwrap();
            line["Package:".len()..].trim()
        })
        .collect();
    recorded.sort();
    assert_eq!(
        recorded, names,
        "the builder's stanzas of the owners join it"
    );
    for owner in &owners {
        let list = format!("var/lib/dpkg/info/{owner}.list");
        assert!(stage.contains(&list.as_str()), "{list} in {stage:?}");
    }
}

#[test]
fn graft_reports_a_library_nobody_has() {
    // Through the entry script, as chroot-pip runs it: the trailing slash chroot-pip may
    // give is dropped, so the message names the runtime path.
    let snippet = with_make_elf(
        r##"
import os, sys
t = sys.argv[1]
os.makedirs(t + "/stage/usr/lib/python3/site-packages")
os.makedirs(t + "/root")
make_elf(t + "/stage/usr/lib/python3/site-packages/x.so", needed=["libdpy-nowhere.so.1"])
print("{}")
"##,
    );
    let (_dir, tmp) = temp();
    json_of(&snippet, &[&tmp]);
    let out = Command::new(python())
        .args([
            &format!("{CONTEXT}/gather.py"),
            "--graft",
            &format!("{tmp}/stage/"),
            &format!("{tmp}/root/"),
        ])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "chroot-pip: /usr/lib/python3/site-packages/x.so needs libdpy-nowhere.so.1, which neither \
         $BUILD_ROOT nor this builder has; install it in the builder (or with chroot-apk/chroot-apt) first\n"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
}

/// What a directory holds besides Python sources and the package.
fn not_sources(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.ends_with(".py") && name != "dpy_gather")
        .collect()
}

#[test]
fn the_entry_script_finds_its_package_and_leaves_no_bytecode() {
    // A copy of the context, so that a __pycache__ written would show.
    let (_dir, tmp) = temp();
    let copy = Path::new(&tmp).join("dpy");
    let package = copy.join("dpy_gather");
    std::fs::create_dir_all(&package).unwrap();
    std::fs::copy(format!("{CONTEXT}/gather.py"), copy.join("gather.py")).unwrap();
    for entry in std::fs::read_dir(format!("{CONTEXT}/dpy_gather")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "py") {
            std::fs::copy(&path, package.join(path.file_name().unwrap())).unwrap();
        }
    }
    // -I: no script directory on sys.path and no PYTHON* variables; the script adds its
    // own directory, and no bytecode of the package is written into /opt/dpy.
    let out = Command::new(python())
        .args(["-I", copy.join("gather.py").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "usage: gather.py CONFIG OUT | gather.py --graft STAGE BUILD_ROOT\n"
    );
    assert_eq!(not_sources(&copy), Vec::<String>::new());
    assert_eq!(not_sources(&package), Vec::<String>::new());
    // Imported, as tests/data/zip_reads_probe.py does: compile's two functions are there,
    // and writing bytecode is left as the interpreter had it.
    let snippet = r##"
import json, sys
sys.path.insert(0, sys.argv[1])
before = sys.dont_write_bytecode
from gather import compile_stdlib_file, recorded_name
print(json.dumps([before, sys.dont_write_bytecode, compile_stdlib_file.__module__,
                  recorded_name("json/decoder.py", "/usr/lib/python3.11", "/usr/lib/python311.zip", ["json"]),
                  recorded_name("json/decoder.py", "/usr/lib/python3.11", "/usr/lib/python311.zip", ["jsonx"])]))
"##;
    let out = Command::new(python())
        .args(["-c", snippet, copy.to_str().unwrap()])
        .env_remove("PYTHONDONTWRITEBYTECODE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        got,
        json!([
            false,
            false,
            "dpy_gather.compile",
            "/usr/lib/python3.11/json/decoder.py",
            "/usr/lib/python311.zip/json/decoder.py"
        ])
    );
    // gather.py's own bytecode is its importer's business; the package's is never written.
    assert_eq!(not_sources(&package), Vec::<String>::new());
}

#[test]
fn write_manifest_lists_each_file_with_its_size_and_each_link() {
    let snippet = r##"
import json, os, sys
from dpy_gather.gather import write_manifest
out = sys.argv[1] + "/out"
os.makedirs(out + "/root/usr/lib")
with open(out + "/layout.json", "w") as f:
    f.write("{}")
with open(out + "/root/usr/lib/libx.so", "wb") as f:
    f.write(b"x" * 1000)
os.symlink("usr/lib", out + "/root/lib")
os.symlink("libx.so", out + "/root/usr/lib/libx.so.1")
os.symlink("nowhere", out + "/root/dangling")
with open(out + "/manifest.json", "w") as f:
    f.write("stale")
write_manifest(out)
with open(out + "/manifest.json") as f:
    print(f.read())
"##;
    let (_dir, tmp) = temp();
    let got = json_of(snippet, &[&tmp]);
    assert_eq!(
        got,
        json!({
            "files": {"layout.json": 2, "root/usr/lib/libx.so": 1000},
            "links": ["root/dangling", "root/lib", "root/usr/lib/libx.so.1"],
        })
    );
}

#[test]
fn the_stdlib_keep_out_is_what_is_not_the_stdlib() {
    let snippet = r##"
import json
from dpy_gather.gather import stdlib_keep_out
debian = {"stdlib": "/usr/lib/python3.11", "lib_dynload": "/usr/lib/python3.11/lib-dynload",
          "purelib": "/usr/local/lib/python3.11/dist-packages", "platstdlib": "/usr/lib/python3.11"}
official = {"stdlib": "/usr/local/lib/python3.13/", "lib_dynload": "/usr/local/lib/python3.13/lib-dynload",
            "purelib": "/usr/local/lib/python3.13/site-packages", "platstdlib": "/usr/local/lib/python3.13",
            }
vendor = dict(official, lib_dynload="/usr/local/lib/python3.13/extras/dynload")
print(json.dumps([stdlib_keep_out(p) for p in (debian, official, vendor)]))
"##;
    assert_eq!(
        json_of(snippet, &[]),
        json!([
            ["dist-packages", "lib-dynload", "site-packages"],
            ["dist-packages", "lib-dynload", "site-packages"],
            ["dist-packages", "extras/dynload", "site-packages"]
        ])
    );
}

/// A source whose Python is not the target's is refused by the gather stage, before
/// anything is built: major.minor for a target such as `3.14`, the release as well for
/// `3.14.2`; pre-release suffixes count as their release.
#[test]
fn the_source_must_be_the_targets_python() {
    let cases = serde_json::json!([
        ["3.14", "3.14.2", true],
        ["3.14", "3.14.0rc1", true],
        ["3.14", "3.14.0a1+", true],
        ["3.14", "3.15.2", false],
        ["3.14", "3.1.4", false],
        ["3.1", "3.14.2", false],
        ["3.14.2", "3.14.2", true],
        ["3.14.2", "3.14.3", false],
        ["3.14.0", "3.14.0rc1", true],
        [null, "3.15.2", true],
    ]);
    let snippet = r#"
import json, sys
from dpy_gather.gather import version_mismatch
print(json.dumps([version_mismatch(w, f) for w, f, _ in json.loads(sys.argv[1])]))
"#;
    let answers = json_of(snippet, &[&cases.to_string()]);
    for (case, answer) in cases
        .as_array()
        .unwrap()
        .iter()
        .zip(answers.as_array().unwrap())
    {
        let fits = case[2].as_bool().unwrap();
        assert_eq!(answer.is_null(), fits, "{case}: {answer}");
    }
    assert_eq!(
        answers[3],
        "the target is Python 3.14 but the source image's interpreter is Python 3.15.2; give a Python 3.14 source with --source-image, or pick a 3.15 target"
    );
}

/// getpath's zip entry is found by its exact name, the free-threaded build's `t`
/// included, and placed beside the stdlib directory when sys.path lacks it.
#[test]
fn the_zip_entry_is_named_as_getpath_names_it() {
    let snippet = r##"
import json
from dpy_gather.probe import getpath_zip, abi_thread
default = ["/usr/local/lib/python314.zip", "/usr/local/lib/python3.14"]
threaded = ["/usr/local/lib/python314t.zip", "/usr/local/lib/python3.14t"]
print(json.dumps([
    getpath_zip(default, "/usr/local/lib", 3, 14, ""),
    getpath_zip(threaded, "/usr/local/lib", 3, 14, "t"),
    # A default build never takes a free-threaded zip for its own, nor the reverse.
    getpath_zip(threaded, "/usr/lib", 3, 14, ""),
    getpath_zip(default, "/opt/lib", 3, 14, "t"),
    abi_thread(),
]))
"##;
    let got = json_of(snippet, &[]);
    assert_eq!(
        got,
        json!([
            "/usr/local/lib/python314.zip",
            "/usr/local/lib/python314t.zip",
            "/usr/lib/python314.zip",
            "/opt/lib/python314t.zip",
            // This machine's Debian Python is a default build.
            ""
        ])
    );
}
