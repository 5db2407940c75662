package server_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/server"
)

func TestImportKeys(t *testing.T) {
	f := newFixture(t, server.Config{})
	format, err := apikey.NewFormat(apikey.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	issued, err := format.Generate() // issued by another keygate sharing this format
	if err != nil {
		t.Fatal(err)
	}
	tok := issued.Reveal()
	body := `{"keys":[
		{"name":"legacy","workspace":"w","role":"viewer","expiry":"30d","token":"` + tok + `"},
		{"name":"legacy-again","workspace":"w","role":"viewer","expiry":"30d","token":"` + tok + `"},
		{"name":"soon","workspace":"w","role":"viewer","expiry":"soon","token":"` + tok + `"},
		{"name":"foreign","workspace":"w","role":"viewer","expiry":"30d","token":"sk_live_0123456789abcdefghij"},
		{"name":"short","workspace":"w","role":"viewer","expiry":"30d","token":"sk_live_0"}
	]}`
	w := f.do(t, request{method: "POST", path: "/keys/import", token: f.admin, contentType: "application/json", body: body})
	if w.Code != http.StatusOK {
		t.Fatalf("POST /keys/import = %d %s", w.Code, w.Body)
	}
	if strings.Contains(w.Body.String(), tok) || strings.Contains(w.Body.String(), "0123456789abcdefghij") {
		t.Fatalf("the response holds a token: %s", w.Body)
	}
	var out server.ImportResponse
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if out.Imported != 1 || out.Duplicates != 1 || out.Failed != 3 || len(out.Results) != 5 {
		t.Fatalf("counts %d/%d/%d of %d results, want 1/1/3 of 5", out.Imported, out.Duplicates, out.Failed, len(out.Results))
	}
	want := []struct{ status, code string }{
		{"imported", ""}, {"duplicate", ""}, {"failed", server.CodeInvalidExpiry}, {"failed", server.CodeNotImportable}, {"failed", server.CodeInvalidField},
	}
	for i, r := range out.Results {
		code := ""
		if r.Error != nil {
			code = r.Error.Code
			if r.Error.Status != http.StatusBadRequest || r.Error.Detail == "" {
				t.Errorf("row %d: problem %+v", i, r.Error)
			}
		}
		if r.Status != want[i].status || code != want[i].code {
			t.Errorf("row %d = %s %q, want %s %q", i, r.Status, code, want[i].status, want[i].code)
		}
	}
	if out.Results[0].Key == nil || out.Results[1].Key == nil || out.Results[1].Key.ID != out.Results[0].Key.ID || out.Results[0].Key.Hint != issued.Hint() {
		t.Fatalf("keys of the results: %+v, %+v", out.Results[0].Key, out.Results[1].Key)
	}
	// The imported token works at once, with what it was given.
	k, err := f.m.Verify(t.Context(), tok)
	if err != nil || k.ID != out.Results[0].Key.ID || k.Workspace != "w" {
		t.Fatalf("Verify(imported) = %v, %v", k, err)
	}
	// Sent again: nothing imported twice.
	w = f.do(t, request{method: "POST", path: "/keys/import", token: f.admin, contentType: "application/json", body: body})
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out.Imported != 0 || out.Duplicates != 2 {
		t.Fatalf("again: %d %s", w.Code, w.Body)
	}
	// Once its key is regenerated, its token is a retired secret: never
	// imported again, under any name.
	if _, err := f.m.Regenerate(t.Context(), keygate.System(), out.Results[0].Key.ID, keygate.RegenerateRequest{Expiry: keygate.ExpireAfterDays(30)}); err != nil {
		t.Fatal(err)
	}
	w = f.do(t, request{method: "POST", path: "/keys/import", token: f.admin, contentType: "application/json",
		body: `{"keys":[{"name":"legacy-revived","workspace":"w","role":"viewer","expiry":"30d","token":"` + tok + `"}]}`})
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out.Failed != 1 {
		t.Fatalf("a retired token: %d %s", w.Code, w.Body)
	}
	if p := out.Results[0].Error; p == nil || p.Code != server.CodeRetired || p.Status != http.StatusConflict {
		t.Fatalf("a retired token's row: %+v", out.Results[0])
	}
	if errs := server.ErrorsFor(server.CodeRetired); len(errs) != 2 || !errors.Is(errs[0], keygate.ErrRetired) || !errors.Is(errs[1], keygate.ErrInvalidRequest) {
		t.Fatalf("ErrorsFor(%q) = %v", server.CodeRetired, errs)
	}
	// Over the batch bound, as a whole: 413 within the default body limit,
	// 400 within a larger one.
	rows := strings.Repeat(`{"name":"x","expiry":"30d","role":"viewer","token":"sk_live_0123456789abcdefghij"},`, keygate.MaxImportBatch+1)
	rows = `{"keys":[` + strings.TrimSuffix(rows, ",") + `]}`
	if big := f.do(t, request{method: "POST", path: "/keys/import", token: f.admin, contentType: "application/json", body: rows}); big.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("%d rows in the default body limit: %d", keygate.MaxImportBatch+1, big.Code)
	}
	roomy := newFixture(t, server.Config{MaxBodyBytes: 1 << 20})
	big := roomy.do(t, request{method: "POST", path: "/keys/import", token: roomy.admin, contentType: "application/json", body: rows})
	if p := problem(t, big); big.Code != http.StatusBadRequest || p.Code != server.CodeInvalidField {
		t.Fatalf("%d rows: %d %s", keygate.MaxImportBatch+1, big.Code, big.Body)
	}
}
