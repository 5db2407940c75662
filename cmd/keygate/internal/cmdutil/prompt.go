package cmdutil

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// Confirm asks question on ios.ErrOut and reads the answer from ios.In:
// true for "y" or "yes". It refuses, with a usage error naming flag, when
// In is not a terminal: a script must say --yes (or the flag given) rather
// than pipe an answer in by accident.
func Confirm(ios *IOStreams, question, flag string) (bool, error) {
	if !ios.InTTY {
		return false, Usagef("%s: standard input is not a terminal to confirm on: give %s", question, flag)
	}
	fmt.Fprintf(ios.ErrOut, "%s [y/N] ", question)
	line, err := bufio.NewReader(ios.In).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}

// maxSecret bounds a secret read from standard input or a file.
const maxSecret = 4 << 10

// ReadSecret reads a secret, such as a token, from ios.In: on a terminal
// it prompts on ios.ErrOut and reads one line without echoing it;
// otherwise it reads the first line of the input (at most 4 KiB). The
// secret is trimmed of spaces; an empty one is a usage error.
func ReadSecret(ios *IOStreams, prompt string) (string, error) {
	var secret string
	if f, ok := ios.In.(*os.File); ok && ios.InTTY {
		fmt.Fprint(ios.ErrOut, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(ios.ErrOut)
		if err != nil {
			return "", err
		}
		secret = string(b)
	} else {
		b, err := io.ReadAll(io.LimitReader(ios.In, maxSecret+1))
		if err != nil {
			return "", err
		}
		if len(b) > maxSecret {
			return "", Usagef("standard input holds more than %d bytes: give the token alone", maxSecret)
		}
		secret, _, _ = strings.Cut(string(b), "\n")
	}
	if secret = strings.TrimSpace(secret); secret == "" {
		return "", Usagef("no token on standard input")
	}
	return secret, nil
}

// ReadSecretFile reads a secret from the first line of the file at path
// (at most 4 KiB), trimmed of spaces. Its errors never quote the file's
// contents.
func ReadSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecret+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxSecret {
		return "", fmt.Errorf("%s holds more than %d bytes: want the token alone", path, maxSecret)
	}
	secret, _, _ := strings.Cut(string(b), "\n")
	if secret = strings.TrimSpace(secret); secret == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return secret, nil
}

// WriteSecretFile writes data to path with mode 0600, replacing the file
// (and tightening the mode of one that existed).
func WriteSecretFile(path, data string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.WriteString(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
