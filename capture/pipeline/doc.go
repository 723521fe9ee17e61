// Package pipeline saves a crashed kernel's memory from a vmcore to a file:
// the pipeline that the capture /init and `gokdump save` share.
package pipeline
