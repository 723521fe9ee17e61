// Package sshdump is the client side of an ssh dump target: it logs in
// with a dedicated key, accepts only the host key pinned in a known_hosts
// file (never trust on first use: a crashed machine cannot ask anyone),
// and gives the capture a directory tree on the server over SFTP, or,
// where the server has no SFTP subsystem, commands to stream into.
//
// It is pure Go (golang.org/x/crypto/ssh, github.com/pkg/sftp): the
// capture initramfs carries no ssh binary. The private key is never
// logged; errors name its file only.
package sshdump
