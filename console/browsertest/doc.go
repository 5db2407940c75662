// Package browsertest drives keygate's admin console in a real browser:
// headless Chromium from Debian's chromium package, through
// github.com/chromedp/chromedp, kept in this separate module so that the
// library's go.mod does not carry a browser driver.
//
// Its test builds the keygate command (keygate serve), runs it on a free port with a fresh
// SQLite database, and goes through the flows of the Replex and Devtron
// docs end to end: sign in; add a token with two category switches and a
// custom date; copy it from the one-time panel and call the demo API with
// it; reload; edit its permissions; regenerate it; revoke; delete; a key
// that may only view, and one that may not sign in; a forged form. The
// window is 1280 px wide, where every row's last action must show. On
// each page it checks that every control has a label, runs axe-core's
// WCAG 2.0 and 2.1 A and AA rules (axe-core 4.14.1, vendored in
// testdata/axe-core, MPL-2.0, so that nothing is fetched when the tests
// run) and saves a screenshot into $KEYGATE_SCREENSHOTS (default: a
// temporary directory). TestFocusVisible tabs through every kind of page
// and compares each kind of control focused and unfocused, pixel by
// pixel: the change must reach 3:1 over at least a 1 px line around it.
//
//	cd console/browsertest && go test ./...
//
// No tool here downloads a browser: without /usr/bin/chromium the test is
// skipped, or fails when KEYGATE_REQUIRE_BROWSER is set (as in CI).
package browsertest
