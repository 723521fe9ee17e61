# Run by the QEMU tests where a kernel has no debug vmlinux:
#   python3 drgn_phys.py DUMP PHYS MARKER
# Opens the dump with drgn, no symbols, and reads MARKER's length of bytes
# at physical address PHYS (where our reader found it).
import sys

import drgn

path, addr, marker = sys.argv[1], int(sys.argv[2], 0), sys.argv[3].encode()
prog = drgn.Program()
prog.set_core_dump(path)
got = prog.read(addr, len(marker), True)
print("platform", prog.platform.arch)
print("phys", got == marker)
