package console_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/console"
	"github.com/keygate/keygate/store/memory"
)

// ExampleNew mounts the console at /console. Signed out, every page
// leads to the sign-in page.
func ExampleNew() {
	m, err := keygate.New(keygate.Config{Store: memory.New(), Hasher: apikey.NewSHA256Hasher()})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close(context.Background())

	con, err := console.New(console.Config{
		Manager:    m,
		Categories: console.Categories("Agent", "Billing", "Cluster", "Organization"),
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/console/", http.StripPrefix("/console", con))

	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/console/", nil))
	fmt.Println(w.Code, w.Header().Get("Location"))
	// Output: 303 /console/signin
}
