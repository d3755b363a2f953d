//! Debug information out of the runtime root: custom CPython builds, pyenv builds and
//! vendors' images ship their interpreter, libpython and extension modules unstripped
//! (one official-layout build measured 60.9 MB distilled, 36.6 MB of it libpython and
//! extension modules with their debug sections).
//!
//! Only sections no process maps are removed: `.debug_*`, `.zdebug_*`, `.symtab` and its
//! `.strtab`, and relocation sections for them, which is what `strip --strip-debug`
//! plus the static symbol table of `--strip-unneeded` removes. Everything up to the end
//! of the last loaded byte is copied as it is; the sections kept after it (`.comment`,
//! `.shstrtab`, ...) follow, then a new section header table. So every loadable segment
//! keeps its bytes at its offset, which [`strip`] checks with goblin before it returns.
//! A file with nothing to remove is left alone, byte for byte.

use std::path::Path;

use crate::tree::{Kind, Tree};

use goblin::elf::{section_header as sh, Elf};

use crate::error::{Error, Result};

/// What the metadata says removed the sections.
pub const BY: &str = "dpy (distill::strip)";

/// What stripping a root removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stripped {
    /// What removed it: dpy itself (this module), as the source may have no `strip`.
    pub by: String,
    /// Root-relative paths of the files that lost sections, sorted.
    pub files: Vec<String>,
    /// Bytes removed, over all of them.
    pub bytes: u64,
}

/// Whether a section is one a runtime never reads: debug info, or the static symbol table
/// (`strtab` is the index of the string table `.symtab` links to).
fn removable(name: &str, header: &sh::SectionHeader, strtab: Option<usize>, index: usize) -> bool {
    if header.sh_flags & u64::from(sh::SHF_ALLOC) != 0 {
        return false;
    }
    name.starts_with(".debug")
        || name.starts_with(".zdebug")
        || header.sh_type == sh::SHT_SYMTAB
        || Some(index) == strtab
}

/// The index of the string table the static symbol table links to, if there is one.
fn symtab_strings(headers: &[sh::SectionHeader]) -> Option<usize> {
    headers
        .iter()
        .find(|h| h.sh_type == sh::SHT_SYMTAB)
        .map(|h| h.sh_link as usize)
}

/// `data` without its debug sections, or None when it is not an ELF file or has none.
pub fn strip(data: &[u8]) -> Result<Option<Vec<u8>>> {
    if !data.starts_with(b"\x7fELF") {
        return Ok(None);
    }
    let elf = match Elf::parse(data) {
        Ok(elf) => elf,
        // Not an ELF file dpy can read: left as it is, as the source has it.
        Err(_) => return Ok(None),
    };
    let headers = &elf.section_headers;
    let shstrndx = elf.header.e_shstrndx as usize;
    // Extended numbering (more than 0xff00 sections) is for object files, not these.
    if headers.is_empty() || elf.header.e_shnum == 0 || shstrndx >= headers.len() {
        return Ok(None);
    }
    let symtab_strings = symtab_strings(headers);
    let name = |h: &sh::SectionHeader| elf.shdr_strtab.get_at(h.sh_name).unwrap_or("");
    let mut remove: Vec<bool> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| i != 0 && i != shstrndx && removable(name(h), h, symtab_strings, i))
        .collect();
    // Relocations of a removed section go with it.
    for (i, h) in headers.iter().enumerate() {
        let relocates = h.sh_type == sh::SHT_REL || h.sh_type == sh::SHT_RELA;
        if relocates
            && h.sh_flags & u64::from(sh::SHF_ALLOC) == 0
            && remove.get(h.sh_info as usize) == Some(&true)
        {
            remove[i] = true;
        }
    }
    if !remove.iter().any(|r| *r) {
        return Ok(None);
    }

    // Everything a process maps, and the headers, stay where they are.
    let class64 = elf.is_64;
    let mut kept_end =
        elf.header.e_phoff as usize + elf.header.e_phnum as usize * elf.header.e_phentsize as usize;
    kept_end = kept_end.max(elf.header.e_ehsize as usize);
    for p in &elf.program_headers {
        kept_end = kept_end.max((p.p_offset + p.p_filesz) as usize);
    }
    for (i, h) in headers.iter().enumerate() {
        if !remove[i] && h.sh_flags & u64::from(sh::SHF_ALLOC) != 0 && h.sh_type != sh::SHT_NOBITS {
            kept_end = kept_end.max((h.sh_offset + h.sh_size) as usize);
        }
    }
    if kept_end > data.len() {
        return Err(Error::Distill(
            "an ELF file's segments run past its end".into(),
        ));
    }
    let mut out = data[..kept_end].to_vec();

    // The sections kept: the same headers, renumbered; those past the loaded bytes are
    // appended in their order.
    let mut new_index = vec![0u32; headers.len()];
    let mut kept: Vec<sh::SectionHeader> = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        if remove[i] {
            continue;
        }
        new_index[i] = kept.len() as u32;
        let mut h = h.clone();
        let end = h.sh_offset + h.sh_size;
        if h.sh_type != sh::SHT_NOBITS && i != 0 && end as usize > kept_end {
            pad(&mut out, h.sh_addralign.max(1) as usize);
            let start = h.sh_offset as usize;
            let bytes = data.get(start..end as usize).ok_or_else(|| {
                Error::Distill("an ELF section runs past the end of its file".into())
            })?;
            h.sh_offset = out.len() as u64;
            out.extend_from_slice(bytes);
        }
        kept.push(h);
    }
    for h in kept.iter_mut() {
        h.sh_link = if (h.sh_link as usize) < headers.len() {
            new_index[h.sh_link as usize]
        } else {
            0
        };
        let info_is_index = h.sh_type == sh::SHT_REL
            || h.sh_type == sh::SHT_RELA
            || h.sh_flags & u64::from(sh::SHF_INFO_LINK) != 0;
        if info_is_index && (h.sh_info as usize) < headers.len() {
            h.sh_info = new_index[h.sh_info as usize];
        }
    }

    // The new section header table, then the ELF header pointing at it.
    let little = elf.little_endian;
    pad(&mut out, if class64 { 8 } else { 4 });
    let shoff = out.len() as u64;
    for h in &kept {
        write_section_header(&mut out, h, class64, little);
    }
    let (shoff_at, shnum_at, shstrndx_at) = if class64 {
        (0x28, 0x3c, 0x3e)
    } else {
        (0x20, 0x30, 0x32)
    };
    let shoff = bytes(shoff, if class64 { 8 } else { 4 }, little);
    put(&mut out, shoff_at, &shoff);
    put(&mut out, shnum_at, &bytes(kept.len() as u64, 2, little));
    put(
        &mut out,
        shstrndx_at,
        &bytes(u64::from(new_index[shstrndx]), 2, little),
    );

    check_loaded_bytes(data, &out)?;
    Ok(Some(out))
}

/// Zeros up to the next multiple of `align`.
fn pad(out: &mut Vec<u8>, align: usize) {
    out.resize(out.len().next_multiple_of(align), 0);
}

fn put(out: &mut [u8], at: usize, value: &[u8]) {
    out[at..at + value.len()].copy_from_slice(value);
}

/// `value` as a `size`-byte field of the file's byte order.
fn bytes(value: u64, size: usize, little: bool) -> Vec<u8> {
    if little {
        value.to_le_bytes()[..size].to_vec()
    } else {
        value.to_be_bytes()[8 - size..].to_vec()
    }
}

fn write_section_header(out: &mut Vec<u8>, h: &sh::SectionHeader, class64: bool, little: bool) {
    // Elf64_Shdr: name, type, link and info are 32-bit; the rest are 64-bit. Elf32_Shdr:
    // every field is 32-bit.
    let wide = if class64 { 8 } else { 4 };
    for (value, size) in [
        (u64::from(h.sh_name as u32), 4),
        (u64::from(h.sh_type), 4),
        (h.sh_flags, wide),
        (h.sh_addr, wide),
        (h.sh_offset, wide),
        (h.sh_size, wide),
        (u64::from(h.sh_link), 4),
        (u64::from(h.sh_info), 4),
        (h.sh_addralign, wide),
        (h.sh_entsize, wide),
    ] {
        out.extend_from_slice(&bytes(value, size, little));
    }
}

/// The stripped file, read back with goblin: the same program headers, and each loadable
/// segment's bytes unchanged at its offset, but for the ELF header's three fields that
/// locate the section header table (the first segment maps the ELF header; no loader
/// reads those fields).
fn check_loaded_bytes(before: &[u8], after: &[u8]) -> Result<()> {
    let wrong = |why: &str| Err(Error::Distill(format!("stripping debug info {why}")));
    let (Ok(old), Ok(new)) = (Elf::parse(before), Elf::parse(after)) else {
        return wrong("left a file goblin cannot read");
    };
    if old.program_headers != new.program_headers || old.header.e_entry != new.header.e_entry {
        return wrong("changed the program headers");
    }
    let mut after = after.to_vec();
    let fields = if old.is_64 {
        [0x28..0x30, 0x3c..0x40]
    } else {
        [0x20..0x24, 0x30..0x34]
    };
    for field in fields {
        after[field.clone()].copy_from_slice(&before[field]);
    }
    for p in old
        .program_headers
        .iter()
        .filter(|p| p.p_type == goblin::elf::program_header::PT_LOAD)
    {
        let range = p.p_offset as usize..(p.p_offset + p.p_filesz) as usize;
        if before.get(range.clone()) != after.get(range) {
            return wrong("changed a loadable segment");
        }
    }
    // (Rust's `.debug_gdb_scripts` is allocated, so it stays, as with `strip`.)
    let symtab_strings = symtab_strings(&new.section_headers);
    let left = new.section_headers.iter().enumerate().any(|(i, h)| {
        let name = new.shdr_strtab.get_at(h.sh_name).unwrap_or("");
        i != new.header.e_shstrndx as usize && removable(name, h, symtab_strings, i)
    });
    if left {
        return wrong("left a debug section");
    }
    Ok(())
}

/// Strips every regular ELF file under `root` in place (a walk lists links and never
/// follows them, so each file once). `keep` receives each original first, with its
/// root-relative path, for a layer that keeps the symbols (the debug variant).
pub fn strip_root(
    root: &Tree,
    mut keep: impl FnMut(&Path, &[u8]) -> Result<()>,
) -> Result<Stripped> {
    let mut stripped = Stripped {
        by: BY.to_string(),
        ..Stripped::default()
    };
    for walked in root.walk("", &|_: &Path| false)? {
        if walked.kind != Kind::File || walked.len < 4 {
            continue;
        }
        let relative = walked.path.as_path();
        let mut head = [0u8; 4];
        let is_elf = root
            .open_file(relative)
            .ok()
            .is_some_and(|mut f| std::io::Read::read_exact(&mut f, &mut head).is_ok())
            && &head == b"\x7fELF";
        if !is_elf {
            continue;
        }
        let data = root.read(relative)?;
        let Some(smaller) = strip(&data).map_err(|e| match e {
            Error::Distill(m) => Error::Distill(format!("{}: {m}", relative.display())),
            e => e,
        })?
        else {
            continue;
        };
        keep(relative, &data)?;
        // Written in place: the mode and the file stay, only the bytes change.
        root.overwrite(relative, &smaller)?;
        stripped.bytes += (data.len() - smaller.len()) as u64;
        stripped.files.push(relative.display().to_string());
    }
    Ok(stripped)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ELF file with debug info: the test binary itself (cargo builds tests with -g).
    fn with_debug_info() -> Vec<u8> {
        std::fs::read(std::env::current_exe().unwrap()).unwrap()
    }

    #[test]
    fn debug_sections_go_and_loaded_bytes_stay() {
        let data = with_debug_info();
        let old = Elf::parse(&data).unwrap();
        let debug: u64 = old
            .section_headers
            .iter()
            .filter(|h| {
                let n = old.shdr_strtab.get_at(h.sh_name).unwrap_or("");
                n.starts_with(".debug") || n == ".symtab" || n == ".strtab"
            })
            .map(|h| h.sh_size)
            .sum();
        assert!(debug > 0, "the test binary has debug sections");
        let smaller = strip(&data).unwrap().expect("something to strip");
        assert!((data.len() - smaller.len()) as u64 >= debug);
        let new = Elf::parse(&smaller).unwrap();
        assert_eq!(new.program_headers, old.program_headers);
        let names: Vec<&str> = new
            .section_headers
            .iter()
            .filter_map(|h| new.shdr_strtab.get_at(h.sh_name))
            .collect();
        assert!(
            names.contains(&".text") && names.contains(&".dynsym"),
            "{names:?}"
        );
        let unloaded: Vec<&str> = new
            .section_headers
            .iter()
            .filter(|h| h.sh_flags & u64::from(sh::SHF_ALLOC) == 0)
            .filter_map(|h| new.shdr_strtab.get_at(h.sh_name))
            .collect();
        assert!(
            !unloaded
                .iter()
                .any(|n| n.starts_with(".debug") || *n == ".symtab"),
            "{unloaded:?}"
        );
        // Each kept section's bytes are the ones it had.
        for h in &new.section_headers {
            let name = new.shdr_strtab.get_at(h.sh_name).unwrap();
            let before = old
                .section_headers
                .iter()
                .find(|o| old.shdr_strtab.get_at(o.sh_name) == Some(name))
                .unwrap();
            if h.sh_type != sh::SHT_NOBITS {
                assert_eq!(
                    smaller[h.sh_offset as usize..(h.sh_offset + h.sh_size) as usize],
                    data[before.sh_offset as usize..(before.sh_offset + before.sh_size) as usize],
                    "{name}"
                );
            }
        }
        // Stripping again finds nothing: a stripped file is left alone.
        assert_eq!(strip(&smaller).unwrap(), None);
    }

    #[test]
    fn a_stripped_binary_and_a_non_elf_file_are_left_alone() {
        // The host's own binaries are stripped by their distribution.
        let ls = std::fs::read("/bin/ls").unwrap();
        assert_eq!(strip(&ls).unwrap(), None);
        assert_eq!(strip(b"#!/bin/sh\necho hi\n").unwrap(), None);
    }

    #[test]
    fn a_stripped_program_still_runs() {
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("bin/test-binary");
        std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
        std::fs::write(&copy, with_debug_info()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut kept = Vec::new();
        let stripped = strip_root(&Tree::open(dir.path()).unwrap(), |path, _| {
            kept.push(path.to_path_buf());
            Ok(())
        })
        .unwrap();
        assert_eq!(stripped.files, vec!["bin/test-binary".to_string()]);
        assert_eq!(kept, vec![std::path::PathBuf::from("bin/test-binary")]);
        // The test binary lists its tests: it loads and runs without what was removed.
        let out = std::process::Command::new(&copy)
            .args(["--list", "--format", "terse"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("a_stripped_program_still_runs"));
    }
}
