// Package importfile reads the files keygate keys import takes: keys of
// another system, one per row, as CSV with a header row or as JSON lines,
// each row with its line number.
//
// # Formats
//
// A CSV file starts with a header row naming its columns, in any order
// and case: name, description, owner, workspace, role, scopes, metadata,
// expiry, token, sha256, hint, rate, uses (or uses_remaining) and
// allowed_cidrs. name and one of token and sha256 are required. Empty cells
// are absent fields. scopes and allowed_cidrs are lists separated by
// spaces, commas or semicolons; metadata is "key=value" pairs separated
// by semicolons; rate is "REQUESTS/WINDOW" such as "100/1m" (see
// [ParseRate]); uses is a whole number.
//
//	name,workspace,scopes,expiry,token
//	billing-export,acme,billing:read,90d,sk_live_4eC39HqLyjWDarjtT1zdp7dc
//
// A JSON lines file holds one JSON object per line with the fields of a
// row of POST /v1/keys/import: those of POST /v1/keys (name, description,
// owner, workspace, role, scopes, metadata, expiry, limits) and token,
// sha256 and hint. Blank lines are skipped.
//
//	{"name":"billing-export","workspace":"acme","scopes":["billing:read"],"expiry":"90d","token":"sk_live_…"}
//
// # Errors
//
// A row that cannot be read is returned with a [*RowError] naming its
// line and why, and reading goes on with the next row. An error that stops
// the file (an unreadable header, a failing reader) is returned alone.
// No error ever quotes the file's contents: a cell may hold a token.
//
// # Concurrency
//
// A [Reader] is for one goroutine.
package importfile

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/client"
)

// Format is the form of an import file.
type Format string

// The formats a [Reader] reads.
const (
	CSV       Format = "csv"
	JSONLines Format = "jsonl"
)

// Detect returns the format of a file named name (".csv", or ".jsonl",
// ".ndjson" and ".json") or, failing that, of its first bytes: JSON lines
// when the first character that is not a space is "{", CSV otherwise.
func Detect(name string, head []byte) Format {
	lower := strings.ToLower(name)
	switch {
	case strings.HasSuffix(lower, ".csv"):
		return CSV
	case strings.HasSuffix(lower, ".jsonl"), strings.HasSuffix(lower, ".ndjson"), strings.HasSuffix(lower, ".json"):
		return JSONLines
	}
	if t := bytes.TrimLeft(bytes.TrimPrefix(head, bom), " \t\r\n"); len(t) > 0 && t[0] == '{' {
		return JSONLines
	}
	return CSV
}

// bom is the UTF-8 byte order mark some spreadsheets write first.
var bom = []byte("\xef\xbb\xbf")

// MaxLine bounds a JSON line, and a CSV row: longer ones are refused as
// rows, and the file goes on.
const MaxLine = 64 << 10

// Row is one key of the file.
type Row struct {
	// Line is the row's line number in the file, from 1 (the first line of
	// a CSV row that spans several).
	Line int
	// Key is the row as POST /v1/keys/import takes it. It prints with its
	// token and SHA-256 redacted.
	Key client.ImportRow
}

// RowError is a row that could not be read. Its Reason never quotes the
// file.
type RowError struct {
	Line   int
	Reason string
}

// Error returns "line N: reason".
func (e *RowError) Error() string { return "line " + strconv.Itoa(e.Line) + ": " + e.Reason }

// ErrHeader means a CSV file's header row is missing or wrong; nothing of
// the file was read.
var ErrHeader = errors.New("importfile: bad header row")

// Reader reads the rows of an import file.
type Reader struct {
	format Format
	// lines reads the JSON lines, counting bytes for Offset.
	lines *bufio.Reader
	line  int
	// csv reads CSV; columns are the header's, in order.
	csv     *csv.Reader
	columns []string
	offset  int64
	done    bool
}

// NewReader returns a Reader of r in format f. For CSV it reads the
// header row at once, returning an error wrapping [ErrHeader] if it is
// not one.
func NewReader(r io.Reader, f Format) (*Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if head, _ := br.Peek(len(bom)); bytes.Equal(head, bom) {
		_, _ = br.Discard(len(bom))
	}
	rd := &Reader{format: f}
	switch f {
	case JSONLines:
		rd.lines = br
		return rd, nil
	case CSV:
		rd.csv = csv.NewReader(&lineLimiter{r: br})
		rd.csv.TrimLeadingSpace = true
		rd.csv.ReuseRecord = true
		return rd, rd.header()
	}
	return nil, fmt.Errorf("importfile: unknown format %q", f)
}

// columns are the CSV columns a header may name, with the JSON field each
// fills.
var columns = map[string]string{
	"name": "name", "description": "description", "owner": "owner", "workspace": "workspace",
	"role": "role", "scopes": "scopes", "metadata": "metadata", "expiry": "expiry",
	"token": "token", "sha256": "sha256", "hint": "hint", "rate": "rate",
	"uses": "uses", "uses_remaining": "uses", "allowed_cidrs": "allowed_cidrs",
}

// ColumnNames lists the CSV columns, for messages.
const ColumnNames = "name, description, owner, workspace, role, scopes, metadata, expiry, token, sha256, hint, rate, uses, allowed_cidrs"

// header reads the CSV header row.
func (r *Reader) header() error {
	rec, err := r.csv.Read()
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: the file is empty; the first line must name the columns (%s)", ErrHeader, ColumnNames)
	}
	if err != nil {
		return fmt.Errorf("%w: line 1: %s", ErrHeader, csvReason(err))
	}
	seen := map[string]bool{}
	for i, c := range rec {
		name, ok := columns[strings.ToLower(strings.TrimSpace(c))]
		if !ok {
			// Never quote it: a file without a header has a token here.
			return fmt.Errorf("%w: line 1, column %d is not a column name; the first line must name the columns (%s)", ErrHeader, i+1, ColumnNames)
		}
		if seen[name] {
			return fmt.Errorf("%w: line 1 names column %s twice", ErrHeader, name)
		}
		seen[name] = true
		r.columns = append(r.columns, name)
	}
	if !seen["name"] || (!seen["token"] && !seen["sha256"]) {
		return fmt.Errorf("%w: line 1 must name the columns name, and token or sha256", ErrHeader)
	}
	r.csv.FieldsPerRecord = len(rec)
	r.offset = r.csv.InputOffset()
	return nil
}

// Offset returns how many bytes of the file (after a byte order mark)
// have been read into rows so far, for a progress bar.
func (r *Reader) Offset() int64 { return r.offset }

// Next returns the next row. A row that cannot be read is returned with a
// [*RowError] (its Line set, its Key zero); io.EOF ends the file; any
// other error stops it.
func (r *Reader) Next() (Row, error) {
	if r.done {
		return Row{}, io.EOF
	}
	if r.format == CSV {
		return r.nextCSV()
	}
	return r.nextJSON()
}

// nextCSV reads a CSV row.
func (r *Reader) nextCSV() (Row, error) {
	rec, err := r.csv.Read()
	before := r.offset
	r.offset = r.csv.InputOffset()
	var pe *csv.ParseError
	switch {
	case errors.Is(err, io.EOF):
		r.done = true
		return Row{}, io.EOF
	case errors.As(err, &pe):
		if r.offset == before {
			// No progress: the reader cannot go on.
			r.done = true
		}
		line := pe.StartLine
		if errors.Is(err, csv.ErrFieldCount) {
			line, _ = r.csv.FieldPos(0)
		}
		return Row{Line: line}, &RowError{Line: line, Reason: csvReason(err)}
	case errors.Is(err, errLineTooLong):
		r.done = true
		return Row{}, fmt.Errorf("importfile: a line is longer than %d bytes: is it a CSV file?", MaxLine)
	case err != nil:
		r.done = true
		return Row{}, fmt.Errorf("importfile: %w", err)
	}
	line, _ := r.csv.FieldPos(0)
	row := Row{Line: line}
	var rerr error
	row.Key, rerr = r.csvRow(rec)
	if rerr != nil {
		return Row{Line: line}, &RowError{Line: line, Reason: rerr.Error()}
	}
	return row, nil
}

// csvReason says what is wrong with a CSV row, without quoting it.
func csvReason(err error) string {
	switch {
	case errors.Is(err, csv.ErrFieldCount):
		return "the row has more or fewer cells than the header"
	case errors.Is(err, csv.ErrQuote), errors.Is(err, csv.ErrBareQuote):
		return `a cell has a misplaced quote: quote a whole cell, with "" for a quote inside it`
	case errors.Is(err, errLineTooLong):
		return fmt.Sprintf("the row is longer than %d bytes", MaxLine)
	}
	return "the row is not CSV"
}

// csvRow converts a CSV record into a row.
func (r *Reader) csvRow(rec []string) (client.ImportRow, error) {
	var k client.ImportRow
	var limits client.Limits
	hasLimits := false
	for i, cell := range rec {
		cell = strings.TrimSpace(cell)
		if cell == "" {
			continue
		}
		switch col := r.columns[i]; col {
		case "name":
			k.Name = cell
		case "description":
			k.Description = cell
		case "owner":
			k.Owner = cell
		case "workspace":
			k.Workspace = cell
		case "role":
			k.Role = cell
		case "expiry":
			k.Expiry = cell
		case "token":
			k.Token = cell
		case "sha256":
			k.SHA256 = cell
		case "hint":
			k.Hint = cell
		case "scopes":
			k.Scopes = SplitList(cell)
		case "allowed_cidrs":
			limits.AllowedCIDRs, hasLimits = SplitList(cell), true
		case "metadata":
			md, err := ParseMetadata(strings.Split(cell, ";"))
			if err != nil {
				return k, fmt.Errorf("metadata: %w", err)
			}
			k.Metadata = md
		case "rate":
			rate, err := ParseRate(cell)
			if err != nil {
				return k, fmt.Errorf("rate: %w", err)
			}
			limits.Rate, hasLimits = rate, true
		case "uses":
			n, err := strconv.ParseInt(cell, 10, 64)
			if err != nil || n < 0 {
				return k, errors.New("uses: want a whole number of uses, 0 or more")
			}
			limits.UsesRemaining, hasLimits = &n, true
		}
	}
	if hasLimits {
		k.Limits = &limits
	}
	return k, nil
}

// nextJSON reads a JSON line, skipping blank ones.
func (r *Reader) nextJSON() (Row, error) {
	for {
		data, err := r.readLine()
		if errors.Is(err, io.EOF) && data == nil {
			r.done = true
			return Row{}, io.EOF
		}
		if errors.Is(err, errLineTooLong) {
			return Row{Line: r.line}, &RowError{Line: r.line, Reason: fmt.Sprintf("the line is longer than %d bytes", MaxLine)}
		}
		if err != nil && !errors.Is(err, io.EOF) {
			r.done = true
			return Row{}, fmt.Errorf("importfile: %w", err)
		}
		data = bytes.TrimSpace(data)
		if len(data) == 0 {
			continue
		}
		row := Row{Line: r.line}
		if rerr := decodeJSONRow(data, &row.Key); rerr != nil {
			return Row{Line: r.line}, &RowError{Line: r.line, Reason: rerr.Error()}
		}
		return row, nil
	}
}

// errLineTooLong is a line over MaxLine.
var errLineTooLong = errors.New("importfile: line too long")

// readLine reads the next line without its end, counting it. A line over
// MaxLine is skipped whole and reported with errLineTooLong.
func (r *Reader) readLine() ([]byte, error) {
	var line []byte
	tooLong := false
	for {
		chunk, err := r.lines.ReadSlice('\n')
		r.offset += int64(len(chunk))
		if !tooLong {
			if len(line)+len(chunk) > MaxLine+1 {
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == nil || (errors.Is(err, io.EOF) && (len(line) > 0 || tooLong)) {
			r.line++
		}
		if tooLong {
			return nil, errLineTooLong
		}
		if errors.Is(err, io.EOF) && len(line) == 0 {
			return nil, io.EOF
		}
		return line, err
	}
}

// decodeJSONRow decodes one JSON line into k, refusing unknown fields and
// anything after the object. Its errors never quote the line.
func decodeJSONRow(data []byte, k *client.ImportRow) error {
	if data[0] == '[' {
		return errors.New("a JSON array: give one object per line (jq -c '.[]' turns an array into JSON lines)")
	}
	if data[0] != '{' {
		return errors.New("not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(k); err != nil {
		*k = client.ImportRow{}
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te) && knownField(te.Field) != "":
			return fmt.Errorf("field %s has the wrong type", knownField(te.Field))
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			return errors.New("a field is not an import field (" + ColumnNames + ", limits)")
		case strings.Contains(err.Error(), "duration"):
			return errors.New(`field limits.rate.window is not a duration such as "1m"`)
		}
		return errors.New("not a JSON object of import fields")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		*k = client.ImportRow{}
		return errors.New("more than one JSON value on the line")
	}
	return nil
}

// jsonFields are the fields of a JSON line and of its limits, whose names
// an error may quote.
var jsonFields = map[string]bool{
	"name": true, "description": true, "owner": true, "workspace": true, "role": true, "scopes": true,
	"metadata": true, "expiry": true, "token": true, "sha256": true, "hint": true, "limits": true,
	"limits.rate": true, "limits.rate.requests": true, "limits.rate.window": true,
	"limits.uses_remaining": true, "limits.allowed_cidrs": true,
}

// knownField returns the longest leading part of a decoding error's field
// path that is a field of a row ("" if none): the path may go on with a
// metadata key, which comes from the file.
func knownField(path string) string {
	parts := strings.Split(strings.TrimPrefix(path, "CreateRequest."), ".")
	for i := len(parts); i > 0; i-- {
		if p := strings.Join(parts[:i], "."); jsonFields[p] {
			return p
		}
	}
	return ""
}

// lineLimiter passes its reader's bytes on, failing with errLineTooLong
// once a line runs over MaxLine, so that a file without line ends cannot
// grow one CSV record without bound.
type lineLimiter struct {
	r   io.Reader
	run int
}

func (l *lineLimiter) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	for i, c := range p[:n] {
		if c == '\n' {
			l.run = 0
			continue
		}
		if l.run++; l.run > MaxLine {
			return i, errLineTooLong
		}
	}
	return n, err
}

// SplitList splits a list of items separated by spaces, commas or
// semicolons.
func SplitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' || r == ' ' || r == '\t' })
}

// ParseMetadata parses "key=value" pairs into a map; empty items are
// skipped. Its errors never quote a value.
func ParseMetadata(pairs []string) (map[string]string, error) {
	md := map[string]string{}
	for i, p := range pairs {
		if strings.TrimSpace(p) == "" {
			continue
		}
		k, v, ok := strings.Cut(p, "=")
		if k = strings.TrimSpace(k); !ok || k == "" {
			return nil, fmt.Errorf("item %d is not key=value", i+1)
		}
		if _, dup := md[k]; dup {
			return nil, fmt.Errorf("item %d repeats a key", i+1)
		}
		md[k] = strings.TrimSpace(v)
	}
	if len(md) == 0 {
		return nil, nil
	}
	return md, nil
}

// ParseRate parses a rate limit "REQUESTS/WINDOW": a whole number of
// requests, then a window as time.ParseDuration reads it ("100/1m",
// "5000/1h", "10/30s") or a unit alone, meaning one of it ("100/m":
// s, m, h or d).
func ParseRate(s string) (client.RateLimit, error) {
	n, w, ok := strings.Cut(strings.TrimSpace(s), "/")
	requests, err := strconv.Atoi(strings.TrimSpace(n))
	if !ok || err != nil || requests < 1 {
		return client.RateLimit{}, errors.New(`want REQUESTS/WINDOW such as "100/1m", with at least 1 request`)
	}
	w = strings.TrimSpace(w)
	var window time.Duration
	switch w {
	case "s":
		window = time.Second
	case "m":
		window = time.Minute
	case "h":
		window = time.Hour
	case "d":
		window = 24 * time.Hour
	default:
		if days, ok := strings.CutSuffix(w, "d"); ok {
			if d, err := strconv.Atoi(days); err == nil && d > 0 && d <= 366 {
				window = time.Duration(d) * 24 * time.Hour
				break
			}
		}
		if window, err = time.ParseDuration(w); err != nil || window <= 0 {
			return client.RateLimit{}, errors.New(`want REQUESTS/WINDOW such as "100/1m", with a positive window`)
		}
	}
	return client.RateLimit{Requests: requests, Window: client.Duration(window)}, nil
}
