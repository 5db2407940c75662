package config

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/keygate/keygate/apikey"
)

// Where peppers come from, in order: --pepper-file, then $KEYGATE_PEPPER
// (with $KEYGATE_PEPPER_OLD for older ones), then, with SQLite only, a
// file generated on the first start beside the database. Peppers are
// never given on the command line, where other users of the machine
// could read them.
const (
	EnvPepper    = "KEYGATE_PEPPER"
	EnvPepperOld = "KEYGATE_PEPPER_OLD"
)

// PepperOptions say where the peppers are: the --pepper-file flag.
type PepperOptions struct {
	// File is a file of peppers, one "ID:BASE64" per line, the current
	// one first.
	File string
}

// AddFlags adds --pepper-file to fs.
func (o *PepperOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.File, "pepper-file", "", "file of peppers, one \"ID:BASE64\" per line, the current first (default: $KEYGATE_PEPPER, with $KEYGATE_PEPPER_OLD for older ones, or with SQLite a file generated beside the database)")
}

// LoadHasher returns the hasher of the configured peppers for the
// database t, and where they came from (for the log; never a pepper
// itself). generate allows, on SQLite, creating a pepper file beside the
// database when none is given (serve does; the other commands only read).
func LoadHasher(o PepperOptions, t *Target, getenv func(string) string, generate bool) (*apikey.Hasher, string, error) {
	var (
		peppers []apikey.Pepper
		source  string
		err     error
	)
	switch {
	case o.File != "" && getenv(EnvPepper) != "":
		return nil, "", fmt.Errorf("both --pepper-file and $%s are set: give one", EnvPepper)
	case o.File != "":
		source = "--pepper-file " + o.File
		peppers, err = readPepperFile(o.File)
	case getenv(EnvPepper) != "":
		source = "$" + EnvPepper
		peppers, err = ParsePeppers(getenv(EnvPepper) + "," + getenv(EnvPepperOld))
	case t.Engine == SQLite:
		path := t.Path + ".pepper"
		source = "file " + path
		if generate {
			source = "generated file " + path
			peppers, err = generatedPepper(path)
		} else {
			peppers, err = readPepperFile(path)
		}
	default:
		return nil, "", fmt.Errorf("no pepper: with %s, set $%s (base64 of at least %d random bytes, e.g. from `openssl rand -base64 32`) or --pepper-file, "+
			"the same on every instance; it must live outside the database", t.Engine, EnvPepper, apikey.MinPepperKeyLength)
	}
	if err != nil {
		return nil, "", fmt.Errorf("pepper (%s): %w", source, err)
	}
	h, err := apikey.NewHasher(peppers[0], peppers[1:]...)
	if err != nil {
		return nil, "", fmt.Errorf("pepper (%s): %w", source, err)
	}
	return h, source, nil
}

// readPepperFile reads a pepper file: one pepper per line, the current one
// first, blank lines and lines starting with # ignored.
func readPepperFile(path string) ([]apikey.Pepper, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			lines = append(lines, line)
		}
	}
	return ParsePeppers(strings.Join(lines, ","))
}

// ParsePeppers parses comma-separated peppers, each "ID:BASE64" or
// "BASE64" (its ID then derived from the key: "p" and 10 hex digits of
// its SHA-256, the same on every instance). Errors never quote a key.
func ParsePeppers(list string) ([]apikey.Pepper, error) {
	var out []apikey.Pepper
	for i, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		id, b64, ok := strings.Cut(item, ":")
		if !ok {
			id, b64 = "", item
		}
		key, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			if key, err = base64.RawStdEncoding.DecodeString(b64); err != nil {
				return nil, fmt.Errorf("pepper %d is not \"ID:BASE64\" or \"BASE64\" (standard base64)", i+1)
			}
		}
		if len(key) < apikey.MinPepperKeyLength {
			return nil, fmt.Errorf("pepper %d has %d bytes, want at least %d", i+1, len(key), apikey.MinPepperKeyLength)
		}
		if id == "" {
			sum := sha256.Sum256(key)
			id = "p" + hex.EncodeToString(sum[:5])
		}
		out = append(out, apikey.Pepper{ID: id, Key: key})
	}
	if len(out) == 0 {
		return nil, errors.New("no pepper given")
	}
	return out, nil
}

// generatedPepper reads the pepper file at path, creating it with a new
// random pepper (mode 0600, never overwritten) if it does not exist.
func generatedPepper(path string) ([]apikey.Pepper, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(key)
	line := "p" + hex.EncodeToString(sum[:5]) + ":" + base64.StdEncoding.EncodeToString(key) + "\n"
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case errors.Is(err, fs.ErrExist):
		return readPepperFile(path)
	case err != nil:
		return nil, err
	}
	_, err = f.WriteString("# keygate pepper, generated on first start. Keep it secret and keep it:\n# without it no key of the database verifies.\n" + line)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, err
	}
	return readPepperFile(path)
}
