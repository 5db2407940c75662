package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestRun runs the quickstart, README's first command, on both stores and
// checks what it prints: each step's outcome, the audit trail, the token
// exactly once, and no database left behind.
func TestRun(t *testing.T) {
	t.Parallel()
	for _, inMemory := range []bool{false, true} {
		name := map[bool]string{false: "sqlite", true: "memory"}[inMemory]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			if err := run(context.Background(), &out, inMemory); err != nil {
				t.Fatalf("run: %v\n%s", err, out.String())
			}
			text := out.String()
			for _, want := range []string{
				`verified "grafana", role viewer, workspace tiger`,
				"cluster:read   in tiger  allowed",
				"billing:read   in tiger  allowed",
				"cluster:write  in tiger  denied",
				"cluster:read   in lion   denied",
				"typo     rejected: keygate: malformed token: apikey: bad checksum",
				"revoked  rejected: keygate: key revoked (ErrRevoked: true)",
				"[REDACTED]   <- the token type redacts itself",
			} {
				if !strings.Contains(text, want) {
					t.Errorf("output lacks %q:\n%s", want, text)
				}
			}
			var events []string
			for _, m := range regexp.MustCompile(`(?m)^  audit: (\S+)`).FindAllStringSubmatch(text, -1) {
				events = append(events, m[1])
			}
			if want := "key.created key.verification_failed key.revoked key.verification_failed"; strings.Join(events, " ") != want {
				t.Errorf("audit events %v, want %s", events, want)
			}
			m := regexp.MustCompile(`(?m)^token    (acme_live_\S+)$`).FindStringSubmatch(text)
			if m == nil {
				t.Fatalf("no token line:\n%s", text)
			}
			if n := strings.Count(text, m[1]); n != 1 {
				t.Errorf("the token appears %d times, want once (its own line)", n)
			}
			if inMemory {
				return
			}
			db := regexp.MustCompile(`(?m)^store    SQLite, (.+)$`).FindStringSubmatch(text)
			if db == nil {
				t.Fatalf("no store line:\n%s", text)
			}
			if _, err := os.Stat(filepath.Dir(db[1])); !os.IsNotExist(err) {
				t.Errorf("the database's directory is still there: %v", err)
			}
		})
	}
}
