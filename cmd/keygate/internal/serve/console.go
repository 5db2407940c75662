package serve

import (
	"log/slog"
	"net/http"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/console"
	"github.com/keygate/keygate/middleware"
)

// consoleCategories are the access controls of the console's permission
// grid: those of the Replex docs, each granting "<resource>:read" and
// "<resource>:write" ("Custom Pricing" grants custom_pricing:read and
// custom_pricing:write). Their "Api Key" is left out: the console's Key
// management switches (apikey:view, apikey:manage) are what manage keys.
var consoleCategories = console.Categories(
	"Agent", "Billing", "Budget", "Cluster", "Custom Pricing", "Invitation",
	"Organization", "Recommendations", "Role", "Saml Integration", "Scopes", "Teams", "User",
)

// newConsole returns the admin console, to mount at /console: people sign
// in with a key holding apikey:view, such as the bootstrap admin key. Its
// sessions are kept in sessions, where every instance sees them; it sees
// clients as the API middleware mw does (behind --trusted-proxy), and its
// failed sign-ins count against the API's own failure budget per address.
func newConsole(m *keygate.Manager, logger *slog.Logger, sessions console.SessionStore, mw *middleware.Middleware) (http.Handler, error) {
	return console.New(console.Config{Manager: m, Categories: consoleCategories, Logger: logger, Sessions: sessions,
		Throttle: mw.Throttle(), ClientAddr: mw.ClientAddr})
}
