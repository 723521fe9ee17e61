// Package pipeline saves a crashed kernel's memory from a vmcore to a file:
// the pipeline that the capture /init and `gokdump save` share.
//
// Save and Estimate walk the same windows of page frames: those that
// hold memory according to the PT_LOADs, below the machine's physical
// address bits, so that their work and the bytes they write follow the
// pages present, not the span of addresses a header can claim.
//
// Memory the source should hold and does not (data past the end of a
// truncated vmcore, pages whose read fails, pages a source lists as
// missing) is missing: neither zero nor kept. The output leaves it out,
// lists it in a GOKDUMP note (vmcore.NoteGokdump), is flagged incomplete,
// and Save's error wraps ErrIncomplete; Stats.Missing and MissingLines say
// where, and Degraded names the level bits the filter could not honour.
package pipeline
