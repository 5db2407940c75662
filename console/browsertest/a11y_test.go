package browsertest

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"fmt"
	"image"
	"image/png"
	"math"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The vendored axe-core (testdata/axe-core): its version, and the SHA-256
// of its axe.min.js as the package's sri-history.json records it.
const (
	axeVersion = "4.14.1"
	axeSRI     = "sha256-KTSJmUUM3yhJqOcLeRL8LahahJ2jnA0NU5T1HUqe2Vw="
)

//go:embed testdata/axe-core/axe.min.js
var axeSource string

// wcagTags select the axe-core rules of WCAG 2.0 and 2.1, levels A and AA.
var wcagTags = []string{"wcag2a", "wcag2aa", "wcag21a", "wcag21aa"}

// TestAxeVendored checks that the vendored axe-core is the release it
// claims to be, unchanged, with its license notice.
func TestAxeVendored(t *testing.T) {
	sum := sha256.Sum256([]byte(axeSource))
	if got := "sha256-" + base64.StdEncoding.EncodeToString(sum[:]); got != axeSRI {
		t.Errorf("testdata/axe-core/axe.min.js: %s, want %s (axe-core %s)", got, axeSRI, axeVersion)
	}
	if !strings.HasPrefix(axeSource, "/*! axe v"+axeVersion+"\n") || !strings.Contains(axeSource[:1000], "Mozilla Public") {
		t.Errorf("testdata/axe-core/axe.min.js does not start with the notice of axe v%s", axeVersion)
	}
}

// axeViolation is one rule axe-core found broken, with the elements that
// break it.
type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target  string `json:"target"`
		HTML    string `json:"html"`
		Summary string `json:"summary"`
	} `json:"nodes"`
}

// axe runs axe-core on the page and fails the test for each violation of
// WCAG 2.0/2.1 A and AA; it logs what axe-core could not decide (its
// "incomplete" results, for a person to review).
func (s *session) axe(page string) {
	s.t.Helper()
	version := get(s, "load axe-core", chromedp.Evaluate[string](
		`(() => { if (typeof axe === "undefined") { `+axeSource+"\n} return axe.version; })()"))
	if version != axeVersion {
		s.t.Fatalf("axe-core %s loaded, want %s", version, axeVersion)
	}
	tags := `["` + strings.Join(wcagTags, `","`) + `"]`
	type results struct {
		Violations []axeViolation `json:"violations"`
		Incomplete []axeViolation `json:"incomplete"`
	}
	r := get(s, "run axe-core on "+page, chromedp.Evaluate[results](`axe.run(document, {
		runOnly: {type: "tag", values: `+tags+`}, resultTypes: ["violations", "incomplete"]
	}).then(r => {
		const list = vs => vs.map(v => ({id: v.id, impact: v.impact || "", help: v.help,
			nodes: v.nodes.map(n => ({target: n.target.join(" "), html: n.html, summary: n.failureSummary || ""}))}));
		return {violations: list(r.violations), incomplete: list(r.incomplete)};
	})`, chromedp.EvalAwaitPromise))
	for _, v := range r.Incomplete {
		var on []string
		for _, n := range v.Nodes {
			on = append(on, n.HTML)
		}
		s.t.Logf("%s: axe-core could not decide %s (%s) on: %s", page, v.ID, v.Help, strings.Join(on, ", "))
	}
	for _, v := range r.Violations {
		var b strings.Builder
		for _, n := range v.Nodes {
			fmt.Fprintf(&b, "\n    %s: %s\n      %s", n.Target, n.HTML, strings.ReplaceAll(n.Summary, "\n", "\n      "))
		}
		s.t.Errorf("%s: axe-core %s (%s): %s%s", page, v.ID, v.Impact, v.Help, b.String())
	}
}

// shown reports whether a person sees the element of sel: rendered (no
// display:none on it or an ancestor, not visibility:hidden, not
// transparent), laid out (an offsetParent) and of some size; its hidden
// property alone says nothing of that.
func (s *session) shown(sel string) bool {
	s.t.Helper()
	return get(s, "see whether "+sel+" shows", chromedp.Evaluate[bool](fmt.Sprintf(`(() => {
		const el = document.querySelector(%q);
		if (!el) { throw new Error("no element " + %q); }
		const r = el.getBoundingClientRect();
		return el.checkVisibility({opacityProperty: true, visibilityProperty: true}) &&
			el.offsetParent !== null && r.width > 0 && r.height > 0;
	})()`, sel, sel)))
}

// rowActionsInside fails unless the window is 1280 px wide and, in each
// row of the key list, the last action lies inside the window and inside
// the visible part of the table: nothing cut off, nothing to scroll to.
func (s *session) rowActionsInside(page string, wantRows int) {
	s.t.Helper()
	type result struct {
		Width   int      `json:"width"`
		Checked int      `json:"checked"`
		Out     []string `json:"out"`
	}
	r := get(s, "measure the row actions", chromedp.Evaluate[result](`(() => {
		const card = document.querySelector(".table-card").getBoundingClientRect();
		const view = document.documentElement.clientWidth;
		const out = [];
		let checked = 0;
		for (const tr of document.querySelectorAll("table.keys tbody tr")) {
			const acts = tr.querySelectorAll(".cell-actions .action");
			if (acts.length === 0) { continue; }
			checked++;
			const a = acts[acts.length - 1], r = a.getBoundingClientRect();
			if (r.width === 0 || r.left < card.left || r.right > card.right || r.right > view) {
				out.push(a.getAttribute("aria-label") + ": " + Math.round(r.left) + "–" + Math.round(r.right) +
					" px, the table shows " + Math.round(card.left) + "–" + Math.round(card.right) + ", the window " + view);
			}
		}
		return {width: window.innerWidth, checked, out};
	})()`))
	if r.Width != 1280 {
		s.t.Errorf("%s: the window is %d px wide, want 1280", page, r.Width)
	}
	if r.Checked < wantRows {
		s.t.Errorf("%s: %d rows with actions, want at least %d", page, r.Checked, wantRows)
	}
	for _, o := range r.Out {
		s.t.Errorf("%s: a row's last action is cut off: %s", page, o)
	}
}

// tabStop is the element the Tab key moved the focus to.
type tabStop struct {
	// Body is set when nothing has the focus; Same when the element kept
	// it (Tab moved between the parts of a date field); Again when it had
	// it before (the Tab key went round the page).
	Body, Same, Again bool
	// Kind groups elements that look alike: tag, type, classes, what
	// they sit on.
	Kind, HTML string
	// The component a person sees (a switch's track, not its invisible
	// checkbox), in document pixels.
	X, Y, W, H float64
	// FocusVisible is whether the element matches :focus-visible.
	FocusVisible bool
	// Switch is the scope of a permission switch.
	Switch string
}

// nextStop presses Tab and describes where the focus went.
func (s *session) nextStop() tabStop {
	s.t.Helper()
	s.do("press Tab", chromedp.KeyEvent(kb.Tab))
	return get(s, "read the focus", chromedp.Evaluate[tabStop](`(() => {
		const el = document.activeElement;
		if (!el || el === document.body || el === document.documentElement) { return {Body: true}; }
		const seen = window.keygateSeen || (window.keygateSeen = new WeakSet());
		const same = el === window.keygateLast, again = !same && seen.has(el);
		seen.add(el);
		window.keygateLast = el;
		const track = el.matches(".switch input") ? el.closest(".switch").querySelector(".track") : null;
		const box = (track || el).getBoundingClientRect();
		let under = "";
		for (let n = el.parentElement; n; n = n.parentElement) {
			const c = getComputedStyle(n).backgroundColor;
			if (c !== "rgba(0, 0, 0, 0)" && c !== "transparent") { under = c; break; }
		}
		return {Same: same, Again: again, Kind: [el.tagName.toLowerCase(), el.type || "", el.className, track ? "switch" : "", under].join(" | "),
			HTML: el.outerHTML.slice(0, 160), X: box.left + scrollX, Y: box.top + scrollY, W: box.width, H: box.height,
			FocusVisible: el.matches(":focus-visible"), Switch: track ? el.value : ""};
	})()`))
}

// ringMargin is how far outside its component a focus indicator is
// looked for, in pixels.
const ringMargin = 8

// around returns the part of the page where stop's focus indicator
// shows: its component and ringMargin around it, in document pixels.
func around(stop tabStop) page.Viewport {
	x, y := math.Floor(max(stop.X-ringMargin, 0)), math.Floor(max(stop.Y-ringMargin, 0))
	return page.Viewport{X: x, Y: y, Width: math.Ceil(stop.X+stop.W+ringMargin) - x, Height: math.Ceil(stop.Y+stop.H+ringMargin) - y, Scale: 1}
}

// screenshot returns the part clip of the page as an image.
func (s *session) screenshot(clip page.Viewport) image.Image {
	s.t.Helper()
	b := get(s, "screenshot", chromedp.Action[[]byte](func(ctx context.Context, t *chromedp.Target) ([]byte, error) {
		r, err := cdp.Call(ctx, t, page.CaptureScreenshot, page.CaptureScreenshotParams{
			Format: page.CaptureScreenshotFormatPng, CaptureBeyondViewport: ptr(true), FromSurface: ptr(true), Clip: &clip})
		if err != nil {
			return nil, err
		}
		return r.Data, nil
	}))
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		s.t.Fatalf("decode the screenshot: %v", err)
	}
	return img
}

// luminance is the relative luminance of c, as WCAG 2 defines it.
func luminance(r, g, b uint32) float64 {
	ch := func(v uint32) float64 {
		c := float64(v>>8) / 255
		if c <= 0.04045 {
			return c / 12.92
		}
		return math.Pow((c+0.055)/1.055, 2.4)
	}
	return 0.2126*ch(r) + 0.7152*ch(g) + 0.0722*ch(b)
}

// contrast is the WCAG contrast ratio of two colours.
func contrast(a, b image.Image, x, y int) float64 {
	ar, ag, ab, _ := a.At(x, y).RGBA()
	br, bg, bb, _ := b.At(x, y).RGBA()
	la, lb := luminance(ar, ag, ab), luminance(br, bg, bb)
	return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)
}

// focusRing compares the component of stop focused (img) and unfocused
// (base): it returns how many pixels in and around it changed by a
// contrast of 3:1 or more, how many that must be (as many as a 1 px line
// around the component: WCAG 2.2's draft Focus Appearance (Minimum)), and
// the highest contrast of a change seen.
func focusRing(base, img image.Image, stop tabStop) (strong, want int, best float64) {
	b := img.Bounds().Intersect(base.Bounds())
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := contrast(base, img, x, y)
			best = max(best, c)
			if c >= 3 {
				strong++
			}
		}
	}
	return strong, int(2 * (stop.W + stop.H)), best
}

// blur takes the focus away; the next Tab goes on from where it was.
func (s *session) blur() {
	s.t.Helper()
	get(s, "clear the focus", chromedp.Evaluate[bool](`(() => { document.activeElement && document.activeElement.blur(); return true; })()`))
}

// focusRings presses Tab through the page, from where the focus is, until
// it goes round (past the end, where nothing has the focus, and on from
// the start); for the first element of each kind not in measured, it
// checks that the focus shows (:focus-visible) and that the focused look
// differs from the unfocused one by 3:1 over at least a 1 px line around
// it. It returns the scopes of the switches the Tab key reached.
func (s *session) focusRings(page string, measured map[string]bool) map[string]bool {
	s.t.Helper()
	s.blur()
	switches := map[string]bool{}
	ends := 0
	for range 300 {
		stop := s.nextStop()
		switch {
		case stop.Again:
			return switches
		case stop.Body:
			if ends++; ends == 2 {
				return switches
			}
			continue
		case stop.Same:
			continue
		}
		if stop.Switch != "" {
			switches[stop.Switch] = true
		}
		if !stop.FocusVisible {
			s.t.Errorf("%s: Tab focused %s, which does not match :focus-visible", page, stop.HTML)
		}
		if measured[stop.Kind] {
			continue
		}
		measured[stop.Kind] = true
		clip := around(stop)
		focused := s.screenshot(clip)
		s.blur()
		strong, want, best := focusRing(s.screenshot(clip), focused, stop)
		s.t.Logf("%s: focus on %s: %d px changed by 3:1 or more (want %d); highest contrast %.2f:1", page, stop.Kind, strong, want, best)
		if strong < want {
			s.t.Errorf("%s: the focus on %s shows %d px at 3:1 or more against its unfocused look, want %d (highest %.2f:1)",
				page, stop.HTML, strong, want, best)
		}
	}
	s.t.Errorf("%s: 300 presses of Tab did not go round the page", page)
	return switches
}

// TestFocusVisible tabs through every kind of console page and checks
// that the keyboard focus shows, at 3:1 against the unfocused look, on
// every kind of control; and that Tab reaches every switch of the add
// form.
func TestFocusVisible(t *testing.T) {
	s := newSession(t)
	srv := startServer(t)
	base := srv.url
	measured := map[string]bool{}

	s.nav("open the sign-in page", chromedp.Navigate(base+"/console/signin"))
	s.focusRings("sign-in", measured)
	s.signIn(base, srv.admin)
	s.focusRings("list", measured)

	s.nav("open the add page", chromedp.Navigate(base+"/console/keys/new"))
	reached := s.focusRings("add", measured)
	all := get(s, "list the switches", chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll('input[role="switch"]')).map(e => e.value)`))
	if len(all) == 0 {
		t.Fatal("the add page has no switches")
	}
	for _, sc := range all {
		if !reached[sc] {
			t.Errorf("Tab does not reach the switch %s", sc)
		}
	}
	s.do("name the key", chromedp.SendKeys(css("#name"), "focus"))
	s.toggleByKeyboard("organization:read")
	s.submit(`form.form button[type="submit"]`)
	s.do("wait for the panel", chromedp.WaitVisible(css("#token-panel")))
	s.focusRings("token panel", measured)

	s.nav("open the list", chromedp.Navigate(base+"/console/"))
	key := get(s, "find the admin key", chromedp.Evaluate[string](
		`Array.from(document.querySelectorAll("a.key-name")).find(a => a.textContent === "bootstrap-admin").getAttribute("href")`))
	for _, p := range []struct{ name, path string }{
		{"key", key}, {"edit", key + "/edit"}, {"regenerate", key + "/regenerate"},
		{"revoke", key + "/revoke"}, {"delete", key + "/delete"}, {"not found", "/console/nothing-here"},
	} {
		s.nav("open the "+p.name+" page", chromedp.Navigate(base+p.path))
		s.focusRings(p.name, measured)
	}
}

func ptr[T any](v T) *T { return &v }
