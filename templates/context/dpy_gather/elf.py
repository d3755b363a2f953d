"""ELF: just enough of the format to follow a loader."""

import struct

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
