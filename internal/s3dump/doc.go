// Package s3dump writes dumps into, and reads them out of, a bucket of an
// S3-compatible object store (AWS S3, MinIO, Ceph RGW, Versity's
// gateway…), through minio-go.
//
// One crash is three objects under <prefix>/<host>/<stamp>/:
// vmcore-dmesg.txt (written first), vmcore (a kdump-compressed file,
// readable in place by crash, drgn and makedumpfile once downloaded) and
// meta.json (Meta: what gokdump ls lists without touching the dump).
//
// The vmcore goes up as a multipart upload whose parts are sent out of
// order: page data streams as parts 2..N while it is written, and part 1
// — the header, the bitmaps, the page descriptors and the first page data,
// at least the 5 MiB minimum part size — is kept in memory and sent last,
// when the kdump writer has finished rewriting it (see Upload). A failed
// upload is aborted, so no orphan parts stay behind.
//
// Because the parts are not sent in file order, the object's checksum is
// S3's composite form: the SHA-256 of the parts' SHA-256 digests, with
// the number of parts after a dash. Meta records the part boundaries, and
// Fetch checks it while it downloads.
package s3dump
