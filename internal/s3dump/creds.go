package s3dump

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Credentials authenticate requests: an access key and its secret, and a
// session token for temporary credentials.
type Credentials struct {
	AccessKey    string
	SecretKey    string
	SessionToken string
}

// ErrCredentials is wrapped by ParseCredentials' errors.
var ErrCredentials = errors.New("s3dump: bad credentials file")

// maxCredentialsFile bounds the file: real ones are a few hundred bytes
// (a session token up to a few KiB).
const maxCredentialsFile = 64 << 10

// ParseCredentials reads a credentials file in the AWS shared format:
//
//	[default]
//	aws_access_key_id = AKIA...
//	aws_secret_access_key = ...
//	aws_session_token = ...        (optional)
//
// Section headers, blank lines and lines starting with # or ; are
// skipped; only the first section (or the lines before any) is read, so
// a file with several profiles uses its first. name is for messages; the
// secret never appears in one.
func ParseCredentials(name string, data []byte) (Credentials, error) {
	if len(data) > maxCredentialsFile {
		return Credentials{}, fmt.Errorf("%w: %s is %d bytes, more than %d", ErrCredentials, name, len(data), maxCredentialsFile)
	}
	var c Credentials
	sections := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxCredentialsFile)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
			continue
		case line[0] == '[':
			if sections++; sections > 1 {
				return c.check(name)
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return Credentials{}, fmt.Errorf("%w: %s:%d: not key = value", ErrCredentials, name, n)
		}
		k, v = strings.TrimSpace(k), strings.Trim(strings.TrimSpace(v), `"'`)
		var field *string
		switch k {
		case "aws_access_key_id":
			field = &c.AccessKey
		case "aws_secret_access_key":
			field = &c.SecretKey
		case "aws_session_token":
			field = &c.SessionToken
		default:
			continue // region, output…: not ours
		}
		if *field != "" {
			return Credentials{}, fmt.Errorf("%w: %s:%d: %s given twice", ErrCredentials, name, n, k)
		}
		for _, r := range v {
			if r <= ' ' || r > '~' {
				return Credentials{}, fmt.Errorf("%w: %s:%d: %s holds a character that is not printable ASCII", ErrCredentials, name, n, k)
			}
		}
		*field = v
	}
	if err := sc.Err(); err != nil {
		return Credentials{}, fmt.Errorf("%w: %s: %v", ErrCredentials, name, err)
	}
	return c.check(name)
}

func (c Credentials) check(name string) (Credentials, error) {
	if c.AccessKey == "" || c.SecretKey == "" {
		return Credentials{}, fmt.Errorf("%w: %s needs aws_access_key_id and aws_secret_access_key", ErrCredentials, name)
	}
	return c, nil
}
