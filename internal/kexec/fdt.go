package kexec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// A flattened device tree (Devicetree Specification, chapter 5), as the
// arm64 capture kernel is given it: read from /sys/firmware/fdt, /chosen
// edited, written back. Only what the loader needs: nodes, properties and
// the memory reservation block; phandles and the like are bytes to it.

const (
	fdtMagic     = 0xd00dfeed
	fdtBeginNode = 1
	fdtEndNode   = 2
	fdtProp      = 3
	fdtNop       = 4
	fdtEnd       = 9
	fdtHeaderLen = 40
	fdtMaxDepth  = 64 // real trees nest a handful of levels
	fdtVersion   = 17
	fdtLastComp  = 16
)

// ErrBadFDT is the error a malformed device tree blob is reported with.
var ErrBadFDT = errors.New("malformed device tree blob")

// An FDTNode is a device tree node.
type FDTNode struct {
	Name     string
	Props    []FDTProp
	Children []*FDTNode
}

// An FDTProp is a property: its name and raw big-endian value.
type FDTProp struct {
	Name  string
	Value []byte
}

// An FDT is a parsed device tree blob.
type FDT struct {
	Root          *FDTNode
	Reserve       [][2]uint64 // memory reservation block: address, size
	BootCPUIDPhys uint32
}

// ParseFDT reads a device tree blob. Every offset and length is checked
// against the blob; anything out of place is ErrBadFDT.
func ParseFDT(b []byte) (*FDT, error) {
	be := binary.BigEndian
	if len(b) < fdtHeaderLen || be.Uint32(b) != fdtMagic {
		return nil, fmt.Errorf("kexec: fdt: %w: no 0xd00dfeed header", ErrBadFDT)
	}
	total := be.Uint32(b[4:])
	offStruct, offStrings, offRsv := be.Uint32(b[8:]), be.Uint32(b[12:]), be.Uint32(b[16:])
	version := be.Uint32(b[20:])
	if uint64(total) > uint64(len(b)) || total < fdtHeaderLen || version < 16 {
		return nil, fmt.Errorf("kexec: fdt: %w: total size %d of %d bytes, version %d", ErrBadFDT, total, len(b), version)
	}
	b = b[:total]
	if offStruct > total || offStrings > total || offRsv > total {
		return nil, fmt.Errorf("kexec: fdt: %w: a block offset lies past the end", ErrBadFDT)
	}
	f := &FDT{BootCPUIDPhys: be.Uint32(b[28:])}
	strs := b[offStrings:]
	if version >= 3 {
		if n := be.Uint32(b[32:]); uint64(n) <= uint64(len(strs)) {
			strs = strs[:n]
		}
	}
	for o := uint64(offRsv); ; o += 16 {
		if o+16 > uint64(total) {
			return nil, fmt.Errorf("kexec: fdt: %w: memory reservation block runs off the end", ErrBadFDT)
		}
		a, s := be.Uint64(b[o:]), be.Uint64(b[o+8:])
		if a == 0 && s == 0 {
			break
		}
		f.Reserve = append(f.Reserve, [2]uint64{a, s})
	}
	p := &fdtParser{b: b[offStruct:], strs: strs}
	tok, err := p.token()
	if err != nil {
		return nil, err
	}
	if tok != fdtBeginNode {
		return nil, fmt.Errorf("kexec: fdt: %w: the structure block does not begin with a node", ErrBadFDT)
	}
	if f.Root, err = p.node(0); err != nil {
		return nil, err
	}
	for {
		tok, err := p.token()
		if err != nil {
			return nil, err
		}
		if tok == fdtEnd {
			return f, nil
		}
		if tok != fdtNop {
			return nil, fmt.Errorf("kexec: fdt: %w: token %d after the root node", ErrBadFDT, tok)
		}
	}
}

type fdtParser struct {
	b    []byte
	off  int
	strs []byte
}

func (p *fdtParser) token() (uint32, error) {
	if p.off+4 > len(p.b) {
		return 0, fmt.Errorf("kexec: fdt: %w: structure block ends without FDT_END", ErrBadFDT)
	}
	t := binary.BigEndian.Uint32(p.b[p.off:])
	p.off += 4
	return t, nil
}

func (p *fdtParser) cstring(b []byte, at int) (string, int, error) {
	if at < 0 || at > len(b) {
		return "", 0, fmt.Errorf("kexec: fdt: %w: string offset %d out of range", ErrBadFDT, at)
	}
	n := bytes.IndexByte(b[at:], 0)
	if n < 0 {
		return "", 0, fmt.Errorf("kexec: fdt: %w: unterminated string", ErrBadFDT)
	}
	return string(b[at : at+n]), n, nil
}

// node reads a node whose FDT_BEGIN_NODE was just read.
func (p *fdtParser) node(depth int) (*FDTNode, error) {
	if depth > fdtMaxDepth {
		return nil, fmt.Errorf("kexec: fdt: %w: nodes nested deeper than %d", ErrBadFDT, fdtMaxDepth)
	}
	name, n, err := p.cstring(p.b, p.off)
	if err != nil {
		return nil, err
	}
	p.off += (n + 1 + 3) &^ 3
	nd := &FDTNode{Name: name}
	for {
		tok, err := p.token()
		if err != nil {
			return nil, err
		}
		switch tok {
		case fdtProp:
			if p.off+8 > len(p.b) {
				return nil, fmt.Errorf("kexec: fdt: %w: truncated property", ErrBadFDT)
			}
			l, nameoff := int(binary.BigEndian.Uint32(p.b[p.off:])), int(binary.BigEndian.Uint32(p.b[p.off+4:]))
			p.off += 8
			if l < 0 || l > len(p.b)-p.off {
				return nil, fmt.Errorf("kexec: fdt: %w: property of %d bytes runs off the end", ErrBadFDT, l)
			}
			pname, _, err := p.cstring(p.strs, nameoff)
			if err != nil {
				return nil, err
			}
			nd.Props = append(nd.Props, FDTProp{Name: pname, Value: bytes.Clone(p.b[p.off : p.off+l])})
			p.off += (l + 3) &^ 3
		case fdtBeginNode:
			c, err := p.node(depth + 1)
			if err != nil {
				return nil, err
			}
			nd.Children = append(nd.Children, c)
		case fdtEndNode:
			return nd, nil
		case fdtNop:
		default:
			return nil, fmt.Errorf("kexec: fdt: %w: token %d inside node %q", ErrBadFDT, tok, name)
		}
	}
}

// Bytes writes the tree as a version 17 blob.
func (f *FDT) Bytes() []byte {
	var st, strs bytes.Buffer
	names := map[string]uint32{}
	be := binary.BigEndian
	u32 := func(v uint32) { st.Write(be.AppendUint32(nil, v)) }
	pad := func() {
		for st.Len()%4 != 0 {
			st.WriteByte(0)
		}
	}
	var emit func(n *FDTNode)
	emit = func(n *FDTNode) {
		u32(fdtBeginNode)
		st.WriteString(n.Name)
		st.WriteByte(0)
		pad()
		for _, pr := range n.Props {
			off, ok := names[pr.Name]
			if !ok {
				off = uint32(strs.Len())
				names[pr.Name] = off
				strs.WriteString(pr.Name)
				strs.WriteByte(0)
			}
			u32(fdtProp)
			u32(uint32(len(pr.Value)))
			u32(off)
			st.Write(pr.Value)
			pad()
		}
		for _, c := range n.Children {
			emit(c)
		}
		u32(fdtEndNode)
	}
	emit(f.Root)
	u32(fdtEnd)

	rsv := make([]byte, 0, 16*(len(f.Reserve)+1))
	for _, r := range f.Reserve {
		rsv = be.AppendUint64(be.AppendUint64(rsv, r[0]), r[1])
	}
	rsv = append(rsv, make([]byte, 16)...)
	offRsv := uint32(fdtHeaderLen+7) &^ 7
	offStruct := offRsv + uint32(len(rsv))
	offStrings := offStruct + uint32(st.Len())
	total := offStrings + uint32(strs.Len())
	out := make([]byte, 0, total)
	for _, v := range []uint32{fdtMagic, total, offStruct, offStrings, offRsv, fdtVersion, fdtLastComp,
		f.BootCPUIDPhys, uint32(strs.Len()), uint32(st.Len())} {
		out = be.AppendUint32(out, v)
	}
	out = append(out, make([]byte, int(offRsv)-len(out))...)
	out = append(out, rsv...)
	out = append(out, st.Bytes()...)
	return append(out, strs.Bytes()...)
}

// Child returns n's child named name, nil if none.
func (n *FDTNode) Child(name string) *FDTNode {
	for _, c := range n.Children {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Prop returns the value of n's property name and whether it exists.
func (n *FDTNode) Prop(name string) ([]byte, bool) {
	for _, p := range n.Props {
		if p.Name == name {
			return p.Value, true
		}
	}
	return nil, false
}

// SetProp sets (or adds) a property.
func (n *FDTNode) SetProp(name string, v []byte) {
	for i := range n.Props {
		if n.Props[i].Name == name {
			n.Props[i].Value = v
			return
		}
	}
	n.Props = append(n.Props, FDTProp{Name: name, Value: v})
}

// DelProp removes a property, if there.
func (n *FDTNode) DelProp(name string) {
	for i := range n.Props {
		if n.Props[i].Name == name {
			n.Props = append(n.Props[:i], n.Props[i+1:]...)
			return
		}
	}
}

// cells returns the root's #address-cells and #size-cells (2 and 1 when
// absent, as the specification says), each 1 or 2.
func (f *FDT) cells() (addr, size int, err error) {
	addr, size = 2, 1
	for _, c := range []struct {
		name string
		to   *int
	}{{"#address-cells", &addr}, {"#size-cells", &size}} {
		if v, ok := f.Root.Prop(c.name); ok {
			if len(v) != 4 {
				return 0, 0, fmt.Errorf("kexec: fdt: %w: %s is %d bytes", ErrBadFDT, c.name, len(v))
			}
			*c.to = int(binary.BigEndian.Uint32(v))
		}
		if *c.to != 1 && *c.to != 2 {
			return 0, 0, fmt.Errorf("kexec: fdt: %s = %d, only 1 or 2 are supported", c.name, *c.to)
		}
	}
	return addr, size, nil
}

// encodeRegs encodes (address, size) pairs in the given cells; a value
// that does not fit is an error.
func encodeRegs(addrCells, sizeCells int, rs ...Range) ([]byte, error) {
	var b []byte
	put := func(v uint64, cells int) error {
		if cells == 1 {
			if v > 0xffffffff {
				return fmt.Errorf("kexec: fdt: %#x does not fit one cell", v)
			}
			b = binary.BigEndian.AppendUint32(b, uint32(v))
			return nil
		}
		b = binary.BigEndian.AppendUint64(b, v)
		return nil
	}
	for _, r := range rs {
		if err := put(r.Start, addrCells); err != nil {
			return nil, err
		}
		if err := put(r.Size(), sizeCells); err != nil {
			return nil, err
		}
	}
	return b, nil
}
