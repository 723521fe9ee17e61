// Package codec compresses and decompresses single memory pages the way
// kdump-compressed ("diskdump") files store them: each page on its own,
// tagged with one flag bit in its page descriptor.
//
// A Compressor or Decompressor belongs to one goroutine and reuses its
// state and buffers, so compressing or decompressing a page allocates
// nothing once warmed up. Compressed formats are the ones makedumpfile,
// crash and libkdumpfile read: zlib-wrapped deflate at the fastest level,
// raw Snappy blocks, single zstd frames, and LZO1X blocks. The zstd and
// LZO encoders are the package's own, built for single pages (zstdenc.go,
// lzoenc.go); the others are klauspost/compress's.
package codec
