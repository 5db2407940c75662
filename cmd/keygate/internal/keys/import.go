package keys

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/client"
	"github.com/keygate/keygate/cmd/keygate/internal/apicmd"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
	"github.com/keygate/keygate/cmd/keygate/internal/importfile"
	"github.com/keygate/keygate/server"
)

// Import batches: at most keygate.MaxImportBatch rows, and by default a
// body under keygate serve's default --max-body-bytes (64 KiB).
const (
	defaultBatch      = 500
	defaultBatchBytes = 60 << 10
)

// importOptions are the settings of keygate keys import.
type importOptions struct {
	IO  *cmdutil.IOStreams
	API apicmd.Options
	// File is the file to import, "-" for standard input.
	File string
	// Format is "auto", "csv" or "jsonl".
	Format     string
	Batch      int
	BatchBytes int
	// Expiry is given to rows without one; "" leaves them as they are.
	Expiry string
	// Resume is the state file; "" for none.
	Resume string
	DryRun bool
}

// newImportCmd returns keygate keys import.
func newImportCmd(ios *cmdutil.IOStreams, runF func(context.Context, *importOptions) error) *cobra.Command {
	o := &importOptions{IO: ios}
	cmd := newVerb("import FILE", "Import keys of another system from CSV or JSON lines",
		`Import keys issued by another system, so that their tokens keep working
(POST /v1/keys/import): from FILE, or standard input for "-".

The file is CSV with a header row naming its columns, or JSON lines, one
object per line with the fields of a row of POST /v1/keys/import. CSV columns:
  `+importfile.ColumnNames+`
name and one of token and sha256 are required; scopes and allowed_cidrs are
lists separated by spaces, metadata is key=value;key=value and rate is
REQUESTS/WINDOW such as 100/1m. The service must accept the tokens' form:
keygate serve --import-prefix (and --import-sha256 for rows by SHA-256).

Rows go in batches of --batch rows, each within --batch-bytes (a batch the
service finds too large is split). Each row is answered imported, duplicate
(its token is already stored: importing again is safe) or failed, with its
line number and reason. With --resume STATEFILE, the lines answered are
recorded there after each batch, and a run with the same state file goes on
after them (retrying the rows that failed). Tokens are never printed.

Exit 0 when every row was imported or a duplicate; 1 when some failed; 3 when
the service became unreachable (run again to go on).`,
		`  keygate keys import legacy.csv
  keygate keys import --resume legacy.state legacy.jsonl
  jq -c '.keys[]' export.json | keygate keys import --format jsonl --expiry 90d -`,
		cobra.ExactArgs(1))
	fs := cmd.Flags()
	fs.StringVar(&o.Format, "format", "auto", "csv, jsonl, or auto: by the file's extension, else JSON lines if it starts with {")
	fs.IntVar(&o.Batch, "batch", defaultBatch, fmt.Sprintf("rows per call, 1 to %d", keygate.MaxImportBatch))
	fs.IntVar(&o.BatchBytes, "batch-bytes", defaultBatchBytes, "the largest request body to send: at most the service's --max-body-bytes")
	cmdutil.Group(fs, "Import", "format", "batch", "batch-bytes")
	fs.StringVar(&o.Expiry, "expiry", "", "the expiry of rows without one: "+expiryHelp)
	fs.StringVar(&o.Resume, "resume", "", "state file recording the lines done, to go on after them if run again")
	fs.BoolVar(&o.DryRun, "dry-run", false, "read the file and report its bad rows; send nothing")
	cmdutil.Topic(fs, "Import", "expiry", "resume", "dry-run")
	o.API.AddFlags(fs)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := prepare(cmd, ios); err != nil {
			return err
		}
		o.File = args[0]
		if runF != nil {
			return runF(cmd.Context(), o)
		}
		return runImport(cmd.Context(), o)
	}
	return cmd
}

// importState is what --resume records: the rows answered so far. It
// holds line numbers only, never a token.
type importState struct {
	// Source is the file's absolute path, or "-".
	Source string `json:"source"`
	// Through: every row up to this line was answered.
	Through int `json:"through_line"`
	// Failed are the lines up to Through that failed, retried on resume,
	// in order; failed holds them while the import runs.
	Failed []int `json:"failed_lines,omitempty"`
	failed map[int]bool
}

// done reports whether the row at line was answered, and not failed.
func (s *importState) done(line int) bool {
	return line <= s.Through && !s.failed[line]
}

// setFailed records whether the row at line failed.
func (s *importState) setFailed(line int, failed bool) {
	if s.failed == nil {
		s.failed = map[int]bool{}
	}
	if failed {
		s.failed[line] = true
	} else {
		delete(s.failed, line)
	}
}

// loadState reads the state file at path, or returns a new state for
// source if there is none.
func loadState(path, source string) (*importState, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &importState{Source: source}, nil
	}
	if err != nil {
		return nil, cmdutil.Usagef("--resume: %w", err)
	}
	var s importState
	if err := json.Unmarshal(data, &s); err != nil || s.Through < 0 {
		return nil, cmdutil.Usagef("--resume %s is not an import state file", path)
	}
	if s.Source != source {
		return nil, cmdutil.Usagef("--resume %s records the import of %s, not of %s: give another state file", path, s.Source, source)
	}
	for _, line := range s.Failed {
		s.setFailed(line, true)
	}
	return &s, nil
}

// save writes the state to path, replacing it atomically.
func (s *importState) save(path string) error {
	s.Failed = slices.Sorted(maps.Keys(s.failed))
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".keygate-import-*")
	if err != nil {
		return fmt.Errorf("--resume: %w", err)
	}
	_, err = tmp.Write(append(data, '\n'))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("--resume: %w", err)
	}
	return nil
}

// importFailure is a row that failed: its line, the API's problem code
// ("invalid_row" for one that could not be read) and why.
type importFailure struct {
	Line   int    `json:"line"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

// importSummary is the result of an import, as -o json prints it.
type importSummary struct {
	Imported   int `json:"imported"`
	Duplicates int `json:"duplicates"`
	Failed     int `json:"failed"`
	// Skipped counts the rows an earlier run did (--resume).
	Skipped  int             `json:"skipped"`
	Failures []importFailure `json:"failures"`
	// DryRun: nothing was sent; Read counts the rows read well.
	DryRun bool `json:"dry_run,omitempty"`
	Read   int  `json:"read,omitempty"`
}

// pendingRow is a row read and not yet answered.
type pendingRow struct {
	line int
	row  client.ImportRow
	size int
}

// importer sends the rows of one import.
type importer struct {
	o        *importOptions
	c        *client.Client
	state    *importState
	sum      importSummary
	batch    []pendingRow
	size     int
	maxBytes int
	bar      *progress
}

// runImport imports the file.
func runImport(ctx context.Context, o *importOptions) error {
	if o.Batch < 1 || o.Batch > keygate.MaxImportBatch {
		return cmdutil.Usagef("--batch %d: want 1 to %d", o.Batch, keygate.MaxImportBatch)
	}
	if o.BatchBytes < 1024 {
		return cmdutil.Usagef("--batch-bytes %d: want at least 1024", o.BatchBytes)
	}
	if o.Expiry != "" {
		if err := checkExpiry("--expiry", o.Expiry); err != nil {
			return err
		}
	}
	in, size, source, err := openImport(o)
	if err != nil {
		return err
	}
	defer in.Close()
	br := bufio.NewReader(in)
	format := importfile.Format(o.Format)
	switch o.Format {
	case "auto":
		head, _ := br.Peek(512)
		format = importfile.Detect(o.File, head)
	case string(importfile.CSV), string(importfile.JSONLines):
	default:
		return cmdutil.Usagef("--format %q: want csv, jsonl or auto", o.Format)
	}
	imp := &importer{o: o, state: &importState{Source: source}, maxBytes: o.BatchBytes, sum: importSummary{Failures: []importFailure{}, DryRun: o.DryRun}}
	if o.Resume != "" {
		if imp.state, err = loadState(o.Resume, source); err != nil {
			return err
		}
		if imp.state.Through > 0 {
			fmt.Fprintf(o.IO.ErrOut, "Resuming after line %d (%d failed row(s) retried).\n", imp.state.Through, len(imp.state.failed))
		}
	}
	if !o.DryRun {
		if imp.c, err = o.API.Client(o.IO); err != nil {
			return err
		}
	}
	r, err := importfile.NewReader(br, format)
	if err != nil {
		return cmdutil.Usagef("%s: %w", o.File, err)
	}
	if o.IO.ErrTTY {
		imp.bar = newProgress(o.IO.ErrOut, size)
	}
	err = imp.run(ctx, r)
	imp.bar.done()
	if err != nil {
		return err
	}
	return imp.report()
}

// openImport opens the file to import, returning its size (0 if unknown)
// and the source the state file records.
func openImport(o *importOptions) (io.ReadCloser, int64, string, error) {
	if o.File == "-" {
		var size int64
		if f, ok := o.IO.In.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
				size = fi.Size()
			}
		}
		return io.NopCloser(o.IO.In), size, "-", nil
	}
	f, err := os.Open(o.File)
	if err != nil {
		return nil, 0, "", cmdutil.Usagef("%w", err)
	}
	var size int64
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		size = fi.Size()
	}
	abs, err := filepath.Abs(o.File)
	if err != nil {
		abs = o.File
	}
	return f, size, abs, nil
}

// run reads every row, sending them in batches.
func (imp *importer) run(ctx context.Context, r *importfile.Reader) error {
	last := 0
	for {
		row, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		imp.bar.update(r.Offset(), &imp.sum)
		var re *importfile.RowError
		switch {
		case errors.As(err, &re):
			if !imp.state.done(re.Line) {
				imp.fail(re.Line, "invalid_row", re.Reason)
			} else {
				imp.sum.Skipped++
			}
			last = re.Line
			continue
		case err != nil:
			if serr := imp.flush(ctx); serr != nil {
				return serr
			}
			return cmdutil.Refused(fmt.Errorf("%s: %w%s", imp.o.File, err, imp.resumeHint()))
		}
		last = row.Line
		if imp.state.done(row.Line) {
			imp.sum.Skipped++
			continue
		}
		if row.Key.Expiry == "" {
			row.Key.Expiry = imp.o.Expiry
		}
		if imp.o.DryRun {
			imp.sum.Read++
			continue
		}
		p := pendingRow{line: row.Line, row: row.Key, size: wireSize(row.Key)}
		if len(imp.batch) > 0 && imp.size+p.size > imp.maxBytes {
			if err := imp.flush(ctx); err != nil {
				return err
			}
		}
		imp.batch = append(imp.batch, p)
		imp.size += p.size
		if len(imp.batch) >= imp.o.Batch {
			if err := imp.flush(ctx); err != nil {
				return err
			}
		}
	}
	if err := imp.flush(ctx); err != nil {
		return err
	}
	imp.state.Through = max(imp.state.Through, last)
	return imp.saveState()
}

// fail records a failed row.
func (imp *importer) fail(line int, code, detail string) {
	imp.sum.Failed++
	imp.sum.Failures = append(imp.sum.Failures, importFailure{Line: line, Code: code, Detail: detail})
	imp.state.setFailed(line, true)
}

// flush sends the pending batch.
func (imp *importer) flush(ctx context.Context) error {
	batch := imp.batch
	imp.batch, imp.size = nil, 0
	if len(batch) == 0 {
		return nil
	}
	return imp.send(ctx, batch)
}

// send imports batch, and records the answers. When the service finds it
// too large, the batches, this one's rows included, are kept to half its
// size from then on.
func (imp *importer) send(ctx context.Context, batch []pendingRow) error {
	rows := make([]client.ImportRow, len(batch))
	size := 0
	for i, p := range batch {
		rows[i], size = p.row, size+p.size
	}
	res, _, err := imp.c.Import(ctx, rows)
	var er *client.ErrorResponse
	if errors.As(err, &er) && er.Problem.Code == server.CodeBodyTooLarge {
		if len(batch) == 1 {
			imp.fail(batch[0].line, server.CodeBodyTooLarge, "The row is larger than the service's request body limit (keygate serve --max-body-bytes).")
			return nil
		}
		imp.maxBytes = max(1024, size/2)
		for len(batch) > 0 {
			n, size := 1, batch[0].size
			for n < len(batch) && size+batch[n].size <= imp.maxBytes {
				size += batch[n].size
				n++
			}
			if err := imp.send(ctx, batch[:n]); err != nil {
				return err
			}
			batch = batch[n:]
		}
		return nil
	}
	if err != nil {
		err = apicmd.Error(err)
		return &cmdutil.ExitError{Code: cmdutil.ExitCode(err), Err: fmt.Errorf("import of the rows from line %d: %w%s", batch[0].line, err, imp.resumeHint())}
	}
	for i, r := range res.Results {
		line := batch[i].line
		switch keygate.ImportStatus(r.Status) {
		case keygate.ImportCreated:
			imp.sum.Imported++
		case keygate.ImportDuplicate:
			imp.sum.Duplicates++
		default:
			code, detail := "failed", ""
			if r.Error != nil {
				code, detail = r.Error.Code, r.Error.Detail
			}
			imp.fail(line, code, detail)
			continue
		}
		imp.state.setFailed(line, false)
	}
	imp.state.Through = max(imp.state.Through, batch[len(batch)-1].line)
	return imp.saveState()
}

// saveState writes the state file, with --resume.
func (imp *importer) saveState() error {
	if imp.o.Resume == "" || imp.o.DryRun {
		return nil
	}
	return imp.state.save(imp.o.Resume)
}

// resumeHint says how to go on after a failure.
func (imp *importer) resumeHint() string {
	if imp.o.Resume != "" {
		return fmt.Sprintf("\nEvery row through line %d was answered; run the same command again to go on after it (--resume %s).", imp.state.Through, imp.o.Resume)
	}
	return fmt.Sprintf("\nEvery row through line %d was answered. Run the same command again: rows already imported answer duplicate (or give --resume STATEFILE to skip them).", imp.state.Through)
}

// report prints the summary, and ends with exit 1 if rows failed.
func (imp *importer) report() error {
	s := &imp.sum
	slices.SortFunc(s.Failures, func(a, b importFailure) int { return a.Line - b.Line })
	out := imp.o.IO.Out
	if imp.o.API.Output.JSON() {
		if err := cmdutil.PrintJSON(out, s); err != nil {
			return err
		}
	} else {
		if s.DryRun {
			fmt.Fprintf(out, "Dry run: %d row(s) to send, %d bad, %d done by an earlier run; nothing sent.\n", s.Read, s.Failed, s.Skipped)
		} else {
			fmt.Fprintf(out, "Imported %d, duplicates %d, failed %d", s.Imported, s.Duplicates, s.Failed)
			if s.Skipped > 0 {
				fmt.Fprintf(out, ", skipped %d (done by an earlier run)", s.Skipped)
			}
			fmt.Fprintln(out, ".")
		}
		for _, f := range s.Failures {
			fmt.Fprintf(out, "line %d: %s: %s\n", f.Line, clean(f.Code), clean(strings.TrimSpace(f.Detail)))
		}
	}
	if s.Failed > 0 {
		return cmdutil.ErrSilent
	}
	return nil
}

// wireSize is how many bytes row takes in a request body. (ImportRow's
// MarshalJSON redacts its secrets: the size counts them.)
func wireSize(row client.ImportRow) int {
	data, err := json.Marshal(struct {
		client.CreateRequest
		Token  string `json:"token,omitempty"`
		SHA256 string `json:"sha256,omitempty"`
		Hint   string `json:"hint,omitempty"`
	}{row.CreateRequest, row.Token, row.SHA256, row.Hint})
	if err != nil {
		return defaultBatchBytes
	}
	return len(data) + 1
}

// progress draws a progress bar on a terminal: the share of the file read
// when its size is known, and the rows answered so far. A nil *progress
// draws nothing.
type progress struct {
	w     io.Writer
	size  int64
	last  time.Time
	drawn bool
}

// newProgress returns a bar drawn on w for a file of size bytes (0 if
// unknown).
func newProgress(w io.Writer, size int64) *progress {
	return &progress{w: w, size: size}
}

// update redraws the bar, at most ten times a second.
func (p *progress) update(offset int64, s *importSummary) {
	if p == nil || time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last, p.drawn = time.Now(), true
	const width = 30
	line := ""
	if p.size > 0 {
		frac := min(float64(offset)/float64(p.size), 1)
		n := int(frac * width)
		line = fmt.Sprintf("[%s%s] %3.0f%%  ", strings.Repeat("=", n), strings.Repeat(" ", width-n), frac*100)
	}
	fmt.Fprintf(p.w, "\r\033[K%simported %d, duplicates %d, failed %d", line, s.Imported, s.Duplicates, s.Failed)
}

// done clears the bar.
func (p *progress) done() {
	if p != nil && p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
