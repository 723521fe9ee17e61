# Run by the QEMU fault tests on dumps that may be incomplete:
#   drgn -q -c DUMP -s VMLINUX drgn_partial.py MARKER
# Tries each read on its own and prints "key value" or "key ERROR: why",
# so a test can tell what drgn can still read from the dump.
import sys

from drgn.helpers.linux.pid import for_each_task
from drgn.helpers.linux.printk import get_printk_records

marker = sys.argv[1].encode() if len(sys.argv) > 1 else b""


def attempt(key, fn):
    try:
        print(key, fn())
    except Exception as e:  # a FaultError on a missing page, mostly
        print(key, "ERROR:", type(e).__name__, str(e).replace("\n", " "))


attempt("comm", lambda: prog["init_task"].comm.string_().decode())
attempt("release", lambda: prog["init_uts_ns"].name.release.string_().decode())
attempt("tasks", lambda: sum(1 for _ in for_each_task(prog)))
attempt("marker", lambda: any(marker in r.text for r in get_printk_records(prog)))
