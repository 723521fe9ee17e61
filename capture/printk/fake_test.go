package printk

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gokdump/gokdump/capture/kmem"
	"github.com/gokdump/gokdump/capture/vmcoreinfo"
)

// fakeKernel is a crashed kernel's memory for tests: physical pages
// scattered in a map, 4-level x86_64 page tables mapping kernel virtual
// addresses onto them, and the VMCOREINFO lines that describe it, so that
// tests go through kmem exactly as a real dump does.
type fakeKernel struct {
	pages  map[uint64]*[4096]byte // by physical address
	nextPA uint64
	pgd    uint64
	nextVA uint64
	lines  []string
}

const (
	fakeKernelMap = 0xffffffff80000000 // __START_KERNEL_map
	fakeDirectMap = 0xffff888000000000 // page_offset_base without KASLR
	fakeSymbols   = 0xffffffff82000000 // where tests put kernel variables
)

var errFakeHole = errors.New("fake: no such physical page")

func newFakeKernel() *fakeKernel {
	k := &fakeKernel{pages: make(map[uint64]*[4096]byte), nextPA: 0x100000, nextVA: fakeDirectMap + 0x1000000}
	k.pgd = k.newPage()
	return k
}

// newPage allocates a zeroed physical page; pages are spread out so that
// virtually contiguous memory is not physically contiguous.
func (k *fakeKernel) newPage() uint64 {
	pa := k.nextPA
	k.nextPA += 3 * 4096
	k.pages[pa] = new([4096]byte)
	return pa
}

func (k *fakeKernel) ReadPhys(p []byte, pa uint64) (int, error) {
	done := 0
	for done < len(p) {
		a := pa + uint64(done)
		pg, ok := k.pages[a&^0xfff]
		if !ok {
			return done, fmt.Errorf("%w: %#x", errFakeHole, a)
		}
		done += copy(p[done:], pg[a&0xfff:])
	}
	return done, nil
}

// page maps the 4 KiB page of va (allocating tables and page as needed)
// and returns it.
func (k *fakeKernel) page(va uint64) *[4096]byte {
	const present = 3 // present, writable
	table := k.pgd
	for level := 4; level >= 1; level-- {
		idx := (va >> (12 + 9*uint(level-1))) & 511
		t := k.pages[table]
		e := binary.LittleEndian.Uint64(t[idx*8:])
		if e&1 == 0 {
			e = k.newPage() | present
			binary.LittleEndian.PutUint64(t[idx*8:], e)
		}
		table = e &^ 0xfff
	}
	return k.pages[table]
}

// mapRange maps [va, va+n).
func (k *fakeKernel) mapRange(va, n uint64) {
	for a := va &^ 0xfff; a < va+n; a += 4096 {
		k.page(a)
	}
}

func (k *fakeKernel) write(va uint64, b []byte) {
	for len(b) > 0 {
		pg := k.page(va)
		n := copy(pg[va&0xfff:], b)
		b, va = b[n:], va+uint64(n)
	}
}

func (k *fakeKernel) put64(va, v uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	k.write(va, b[:])
}

func (k *fakeKernel) put32(va uint64, v uint32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	k.write(va, b[:])
}

// alloc returns n bytes of fresh mapped memory. Allocations are 8-byte
// aligned and packed, so structures straddle pages.
func (k *fakeKernel) alloc(n uint64) uint64 {
	va := k.nextVA
	k.nextVA += (n + 0x47) &^ 7 // leave a gap
	k.mapRange(va, n)
	return va
}

// place copies b into fresh memory and returns its address.
func (k *fakeKernel) place(b []byte) uint64 {
	va := k.alloc(uint64(len(b)))
	k.write(va, b)
	return va
}

func (k *fakeKernel) addInfo(format string, args ...any) {
	k.lines = append(k.lines, fmt.Sprintf(format, args...))
}

func (k *fakeKernel) info(t testing.TB) *vmcoreinfo.Info {
	t.Helper()
	text := strings.Join(k.lines, "\n") +
		fmt.Sprintf("\nSYMBOL(init_top_pgt)=%x\nNUMBER(phys_base)=0\n", fakeKernelMap+k.pgd)
	info, err := vmcoreinfo.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func (k *fakeKernel) memory(t testing.TB) *kmem.Memory {
	t.Helper()
	m, err := kmem.New(k, k.info(t), elf.EM_X86_64)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// vmcoreinfoLockless is the printk part of the VMCOREINFO of Debian's
// 6.1.0-56-cloud-amd64 (x86_64), as in the real dump.
const vmcoreinfoLockless = `SIZE(printk_ringbuffer)=88
OFFSET(printk_ringbuffer.desc_ring)=0
OFFSET(printk_ringbuffer.text_data_ring)=48
OFFSET(printk_ringbuffer.fail)=80
SIZE(prb_desc_ring)=48
OFFSET(prb_desc_ring.count_bits)=0
OFFSET(prb_desc_ring.descs)=8
OFFSET(prb_desc_ring.infos)=16
OFFSET(prb_desc_ring.head_id)=24
OFFSET(prb_desc_ring.tail_id)=32
SIZE(prb_desc)=24
OFFSET(prb_desc.state_var)=0
OFFSET(prb_desc.text_blk_lpos)=8
SIZE(prb_data_blk_lpos)=16
OFFSET(prb_data_blk_lpos.begin)=0
OFFSET(prb_data_blk_lpos.next)=8
SIZE(printk_info)=88
OFFSET(printk_info.seq)=0
OFFSET(printk_info.ts_nsec)=8
OFFSET(printk_info.text_len)=16
OFFSET(printk_info.caller_id)=20
OFFSET(printk_info.dev_info)=24
SIZE(dev_printk_info)=64
OFFSET(dev_printk_info.subsystem)=0
LENGTH(printk_info_subsystem)=16
OFFSET(dev_printk_info.device)=16
LENGTH(printk_info_device)=48
SIZE(prb_data_ring)=32
OFFSET(prb_data_ring.size_bits)=0
OFFSET(prb_data_ring.data)=8
OFFSET(prb_data_ring.head_lpos)=16
OFFSET(prb_data_ring.tail_lpos)=24
SIZE(atomic_long_t)=8
OFFSET(atomic_long_t.counter)=0
SIZE(latched_seq)=24
OFFSET(latched_seq.val)=8`

// TestFakeKernel checks the fixture itself: what it writes reads back
// through kmem's page-table walk, across page boundaries.
func TestFakeKernel(t *testing.T) {
	k := newFakeKernel()
	va := k.alloc(10000)
	want := make([]byte, 10000)
	for i := range want {
		want[i] = byte(i * 7)
	}
	k.write(va, want)
	m := k.memory(t)
	got := make([]byte, len(want))
	if _, err := m.ReadVirt(got, va); err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatal("read back differs")
	}
	if _, err := m.ReadVirt(got[:8], fakeDirectMap+0x100000000); !errors.Is(err, kmem.ErrNotMapped) {
		t.Fatalf("unmapped read: %v", err)
	}
}
