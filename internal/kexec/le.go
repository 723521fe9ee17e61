package kexec

import (
	"encoding/binary"
	"io"
)

func writeLE(w io.Writer, v any) error { return binary.Write(w, binary.LittleEndian, v) }
