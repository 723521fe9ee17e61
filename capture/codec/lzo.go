package codec

import "fmt"

// lzo1xDecode decodes one LZO1X block (as liblzo's lzo1x_1_compress and
// makedumpfile -l write it) into dst and returns the number of bytes
// written. Every read of src and write or look-back into dst is checked,
// so hostile input yields an error, never a panic. The whole of src must
// be consumed by the end-of-stream marker, as liblzo's safe decoder
// demands.
//
// The stream is a sequence of instructions; the meaning of an opcode
// below 16 depends on how many literals the previous instruction copied
// (state): none, 1–3, or a run of 4 or more.
func lzo1xDecode(dst, src []byte) (int, error) {
	var ip, op, state int
	n := len(src)
	if n == 0 {
		return 0, fmt.Errorf("%w: lzo: empty input", ErrCorrupt)
	}

	literals := func(k int) error {
		if k > n-ip {
			return fmt.Errorf("%w: lzo: literal run of %d at input %d overruns input", ErrCorrupt, k, ip)
		}
		if k > len(dst)-op {
			return fmt.Errorf("%w: lzo: literal run of %d at output %d overruns the page", ErrSize, k, op)
		}
		copy(dst[op:op+k], src[ip:ip+k])
		ip += k
		op += k
		return nil
	}
	// extend reads the continuation of a length field that was zero in
	// its opcode: a zero byte adds 255, the first non-zero byte ends it.
	extend := func(base int) (int, error) {
		t := 0
		for {
			if ip >= n {
				return 0, fmt.Errorf("%w: lzo: length at input %d overruns input", ErrCorrupt, ip)
			}
			b := src[ip]
			ip++
			if b != 0 {
				return t + base + int(b), nil
			}
			t += 255
			if t > len(dst) {
				// No page holds a run that long.
				return 0, fmt.Errorf("%w: lzo: length at input %d overruns the page", ErrSize, ip)
			}
		}
	}
	match := func(dist, length int) error {
		if dist <= 0 || dist > op {
			return fmt.Errorf("%w: lzo: match distance %d at output %d reaches before the page", ErrCorrupt, dist, op)
		}
		if length > len(dst)-op {
			return fmt.Errorf("%w: lzo: match of %d at output %d overruns the page", ErrSize, length, op)
		}
		from := op - dist
		if dist >= length {
			copy(dst[op:op+length], dst[from:from+length])
		} else {
			// Overlapping: each byte may repeat one just written.
			for i := 0; i < length; i++ {
				dst[op+i] = dst[from+i]
			}
		}
		op += length
		return nil
	}
	byte1 := func() (int, error) {
		if ip >= n {
			return 0, fmt.Errorf("%w: lzo: truncated at input %d", ErrCorrupt, ip)
		}
		b := src[ip]
		ip++
		return int(b), nil
	}
	le16 := func() (int, error) {
		if n-ip < 2 {
			return 0, fmt.Errorf("%w: lzo: truncated at input %d", ErrCorrupt, ip)
		}
		v := int(src[ip]) | int(src[ip+1])<<8
		ip += 2
		return v, nil
	}

	// A first byte above 17 is a literal run with no instruction before it.
	if src[0] > 17 {
		t := int(src[0]) - 17
		ip = 1
		if err := literals(t); err != nil {
			return op, err
		}
		state = min(t, 4)
	}
	for {
		t, err := byte1()
		if err != nil {
			return op, err
		}
		var dist, length, next int
		switch {
		case t >= 64:
			// 1LLDDDSS or 01LDDDSS + one byte: 3 to 8 bytes, up to 2 KiB back.
			h, err := byte1()
			if err != nil {
				return op, err
			}
			dist = 1 + (t>>2)&7 + h<<3
			length = t>>5 + 1
			next = t & 3
		case t >= 32:
			// 001LLLLL + LE16: distance up to 16 KiB.
			length = t & 31
			if length == 0 {
				if length, err = extend(31); err != nil {
					return op, err
				}
			}
			length += 2
			v, err := le16()
			if err != nil {
				return op, err
			}
			dist = 1 + v>>2
			next = v & 3
		case t >= 16:
			// 0001HLLL + LE16: 16 to 48 KiB back; distance 0 ends the stream.
			length = t & 7
			if length == 0 {
				if length, err = extend(7); err != nil {
					return op, err
				}
			}
			length += 2
			v, err := le16()
			if err != nil {
				return op, err
			}
			dist = (t&8)<<11 + v>>2
			if dist == 0 {
				if ip != n {
					return op, fmt.Errorf("%w: lzo: %d bytes after end of stream", ErrCorrupt, n-ip)
				}
				return op, nil
			}
			dist += 0x4000
			next = v & 3
		default:
			switch state {
			case 0:
				// 0000LLLL: a run of 4 or more literals.
				length = t
				if length == 0 {
					if length, err = extend(15); err != nil {
						return op, err
					}
				}
				if err := literals(length + 3); err != nil {
					return op, err
				}
				state = 4
				continue
			case 4:
				// 0000DDSS + one byte after a literal run: 3 bytes, 2–3 KiB back.
				h, err := byte1()
				if err != nil {
					return op, err
				}
				dist = 1 + 0x800 + t>>2 + h<<2
				length = 3
			default:
				// 0000DDSS + one byte after 1–3 literals: 2 bytes, up to 1 KiB back.
				h, err := byte1()
				if err != nil {
					return op, err
				}
				dist = 1 + t>>2 + h<<2
				length = 2
			}
			next = t & 3
		}
		if err := match(dist, length); err != nil {
			return op, err
		}
		// The low two bits of the instruction (or of its distance) copy
		// 0–3 literals straight after the match.
		if err := literals(next); err != nil {
			return op, err
		}
		state = next
	}
}
