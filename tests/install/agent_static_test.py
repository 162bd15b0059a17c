#!/usr/bin/env python3
"""tether-agent needs nothing on a server but the kernel: its ELF file has no program
interpreter (PT_INTERP) and no dynamic section (PT_DYNAMIC, where DT_NEEDED would name
shared libraries), it is x86_64 or whatever this build targets, and the kernel it asks
for (the NT_GNU_ABI_TAG note) is at most 3.10, older than any server of the last ten
years (RHEL 7 has 3.10). Read from the file itself, not from ldd, which some systems
refuse to run on foreign binaries; ldd is asked too where it is installed.

  agent_static_test.py TETHER_AGENT
"""
import shutil
import struct
import subprocess
import sys

PT_DYNAMIC, PT_INTERP, PT_NOTE = 2, 3, 4
NT_GNU_ABI_TAG = 1
MAX_KERNEL = (3, 10, 0)


def fail(message):
    print(f"agent_static_test: {message}", file=sys.stderr)
    sys.exit(1)


def main():
    path = sys.argv[1]
    data = open(path, "rb").read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        fail(f"{path} is not a 64-bit little-endian ELF file")
    e_phoff, = struct.unpack_from("<Q", data, 0x20)
    e_phentsize, e_phnum = struct.unpack_from("<HH", data, 0x36)
    kernel = None
    for i in range(e_phnum):
        p_type, _flags, p_offset, _vaddr, _paddr, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, e_phoff + i * e_phentsize)
        if p_type == PT_INTERP:
            interp = data[p_offset:p_offset + p_filesz].rstrip(b"\0").decode()
            fail(f"{path} asks for a dynamic loader ({interp}): not linked statically")
        if p_type == PT_DYNAMIC:
            fail(f"{path} has a dynamic section: it needs shared libraries")
        if p_type == PT_NOTE:
            at, end = p_offset, p_offset + p_filesz
            while at + 12 <= end:
                namesz, descsz, ntype = struct.unpack_from("<III", data, at)
                name = data[at + 12:at + 12 + namesz]
                desc_at = at + 12 + ((namesz + 3) & ~3)
                if ntype == NT_GNU_ABI_TAG and name.rstrip(b"\0") == b"GNU" and descsz >= 16:
                    _os, *version = struct.unpack_from("<IIII", data, desc_at)
                    kernel = tuple(version)
                at = desc_at + ((descsz + 3) & ~3)
    if kernel is not None and kernel > MAX_KERNEL:
        fail(f"{path} needs Linux {'.'.join(map(str, kernel))} or later")
    if shutil.which("ldd"):
        out = subprocess.run(["ldd", path], capture_output=True, text=True, timeout=30)
        said = (out.stdout + out.stderr).strip()
        if "not a dynamic executable" not in said and "statically linked" not in said:
            fail(f"ldd {path}: {said}")
    print(f"{path}: static, kernel {'.'.join(map(str, kernel)) if kernel else 'any'} or later")


if __name__ == "__main__":
    main()
