package config

import (
	"errors"
	"fmt"
)

// Sentinel errors, for errors.Is on what Parse, ApplyCmdline and Validate
// return.
var (
	// ErrSyntax: the file is not valid TOML.
	ErrSyntax = errors.New("TOML syntax error")
	// ErrUnknownKey: a key gokdump does not know, often a typo.
	ErrUnknownKey = errors.New("unknown key")
	// ErrType: a value of the wrong TOML type, such as a number in quotes.
	ErrType = errors.New("wrong type")
	// ErrValue: a value of the right type but out of range or not allowed,
	// alone or together with another key.
	ErrValue = errors.New("bad value")
	// ErrNoTarget: no target is set, in the file or on the command line
	// (gokdump.target=); Targets returns it at capture time.
	ErrNoTarget = errors.New("no dump target: set target in /etc/gokdump.toml or gokdump.target= on the capture kernel command line")
)

// An Error is a problem with one key, from one source.
type Error struct {
	Source string // "FILE:LINE", "cmdline" or "default"
	Key    string // the key, "" for a syntax error outside any key
	Err    error  // wraps one of the sentinel errors
}

func (e *Error) Error() string {
	switch {
	case e.Key == "":
		return fmt.Sprintf("config: %s: %v", e.Source, e.Err)
	case e.Source == SourceCmdline:
		return fmt.Sprintf("config: %s: gokdump.%s: %v", e.Source, e.Key, e.Err)
	}
	return fmt.Sprintf("config: %s: %s: %v", e.Source, e.Key, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// kindError carries a message and the sentinel it is an instance of,
// without repeating the sentinel's text in the message.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

func typeErr(want string, got any) error {
	return &kindError{ErrType, fmt.Sprintf("want %s, got %s", want, tomlTypeName(got))}
}

func valueErr(format string, args ...any) error {
	return &kindError{ErrValue, fmt.Sprintf(format, args...)}
}
