package sshdump

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Sentinel errors, for errors.Is.
var (
	// ErrHostKeyChanged: the server offered a key other than the one
	// pinned for it.
	ErrHostKeyChanged = errors.New("host key changed")
	// ErrHostKeyUnknown: no key is pinned for the server.
	ErrHostKeyUnknown = errors.New("host key unknown")
	// ErrAuth: the server refused the key.
	ErrAuth = errors.New("authentication refused")
)

// maxKnownHosts bounds the known_hosts file read.
const maxKnownHosts = 1 << 20

// HostKeys is a known_hosts file: the keys pinned for each server.
type HostKeys struct {
	path     string
	data     []byte
	callback ssh.HostKeyCallback
}

// LoadHostKeys reads a known_hosts file.
func LoadHostKeys(path string) (*HostKeys, error) {
	data, err := readSmall(path, maxKnownHosts)
	if err != nil {
		return nil, fmt.Errorf("sshdump: known hosts: %w", err)
	}
	return ParseHostKeys(path, data)
}

// ParseHostKeys parses known_hosts data; name labels errors.
func ParseHostKeys(name string, data []byte) (*HostKeys, error) {
	tmp, err := os.CreateTemp("", "known_hosts")
	if err != nil {
		return nil, fmt.Errorf("sshdump: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("sshdump: %w", err)
	}
	// knownhosts reads files only.
	cb, err := knownhosts.New(tmp.Name())
	if err != nil {
		return nil, fmt.Errorf("sshdump: %s: %w", name, err)
	}
	return &HostKeys{path: name, data: data, callback: cb}, nil
}

// Algorithms returns the host key algorithms of the keys pinned for
// hostport ("host:port"), so the server is asked for a key that can be
// checked rather than another one it also has.
func (h *HostKeys) Algorithms(hostport string) []string {
	want := knownhosts.Normalize(hostport)
	var algos []string
	rest := h.data
	for len(rest) > 0 {
		marker, hosts, key, _, r, err := ssh.ParseKnownHosts(rest)
		rest = r
		if err != nil {
			break
		}
		if marker != "" {
			continue
		}
		match := false
		for _, hp := range hosts {
			if knownhosts.Normalize(hp) == want || strings.HasPrefix(hp, "|1|") {
				match = true
			}
		}
		if !match {
			continue
		}
		for _, a := range algorithmsOf(key.Type()) {
			if !slices.Contains(algos, a) {
				algos = append(algos, a)
			}
		}
	}
	return algos
}

func algorithmsOf(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

// Callback checks a server's key against the pinned ones, with errors
// that say what happened and what to do.
func (h *HostKeys) Callback() ssh.HostKeyCallback {
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := h.callback(hostname, remote, key)
		if err == nil {
			return nil
		}
		var ke *knownhosts.KeyError
		if errors.As(err, &ke) {
			if len(ke.Want) == 0 {
				return fmt.Errorf("%w: %s offered %s %s and %s pins no key for it; nothing was sent (run gokdump propagate, then rebuild the image)",
					ErrHostKeyUnknown, hostname, key.Type(), ssh.FingerprintSHA256(key), h.path)
			}
			var pinned []string
			for _, w := range ke.Want {
				pinned = append(pinned, fmt.Sprintf("%s %s (%s:%d)", w.Key.Type(), ssh.FingerprintSHA256(w.Key), h.path, w.Line))
			}
			return fmt.Errorf("%w: %s offered %s %s, but the image pins %s; nothing was sent (if the server's key was changed on purpose, run gokdump propagate and rebuild the image)",
				ErrHostKeyChanged, hostname, key.Type(), ssh.FingerprintSHA256(key), strings.Join(pinned, ", "))
		}
		return fmt.Errorf("sshdump: host key of %s: %w", hostname, err)
	}
}

// readSmall reads a file of at most limit bytes.
func readSmall(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return b, nil
}
