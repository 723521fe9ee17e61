# Run by gokdump vmtest: drgn -q -c DUMP -s VMLINUX drgn_check.py MARKER REASON
# Prints what drgn could read from the dump, one "key value" per line.
import sys

from drgn.helpers.linux.pid import for_each_task
from drgn.helpers.linux.printk import get_printk_records

marker = sys.argv[1].encode()
reasons = [r.encode() for r in sys.argv[2].split("|")]
print("comm", prog["init_task"].comm.string_().decode())
print("release", prog["init_uts_ns"].name.release.string_().decode())
print("tasks", sum(1 for _ in for_each_task(prog)))
recs = get_printk_records(prog)
print("records", len(recs))
print("marker", any(marker in r.text for r in recs))
print("reason", any(any(x in r.text for x in reasons) for r in recs))
