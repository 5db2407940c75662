// Command server runs keygate as a token service: the key management API
// at /v1 (with its OpenAPI document at /v1/openapi.json), remote
// verification for other services (POST /v1/keys/verify), health and
// readiness probes, and a small demo API behind the middleware that stands
// for your own service.
//
//	go run ./examples/server                      # SQLite in ./keygate.db, on 127.0.0.1:8080
//	go run ./examples/server -db 'postgres://u:p@host/db?sslmode=require'
//	go run ./examples/server -db 'mysql://u:p@host:3306/db'
//
// On the first start with an empty store it creates a super-admin key and
// prints its token once, to stderr; see the README for a walk-through.
// Run it with -h for every flag.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stderr, nil)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "keygate server:", err)
		os.Exit(1)
	}
}

// run parses args, serves until ctx ends, then shuts down gracefully:
// in-flight requests finish and last-used times are written. ready, when
// not nil, is called with the listening address once the server accepts
// connections.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, ready func(addr string)) error {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	a, err := newApp(ctx, opts, getenv, stderr)
	if err != nil {
		return err
	}
	return a.serve(ctx, ready)
}
