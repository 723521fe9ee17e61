// Package dumpdir lays out saved crash dumps on the target filesystem:
// one directory per crash, named for the time of the crash, holding
// vmcore (written first as vmcore-incomplete and renamed only once it is
// complete and synced) and vmcore-dmesg.txt.
//
// Dumps hold secrets: directories are created 0700 and files 0600, with
// O_EXCL and O_NOFOLLOW so that nothing planted on the target filesystem
// can redirect a write.
package dumpdir
