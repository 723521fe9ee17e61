//go:build !linux

package codec

func keepFDsFromChildren() {}
