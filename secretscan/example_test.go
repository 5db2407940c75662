package secretscan_test

import (
	"log"
	"net/http"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/secretscan"
)

// Mount the handler where GitHub's secret scanning partner program posts
// the tokens it finds; register apikey.Pattern and that URL with GitHub.
func ExampleNew() {
	var m *keygate.Manager // the service's Manager
	h, err := secretscan.New(secretscan.Config{
		Manager: m,
		Keys:    secretscan.NewGitHubKeys(&http.Client{Timeout: 10 * time.Second}, ""),
		Policy:  secretscan.Revoke,
	})
	if err != nil {
		log.Print(err) // a nil Manager here; a real program has one
		return
	}
	http.Handle("POST /github/secret-scanning", h)
}
