// Command keygate runs keygate as a token service (keygate serve) and
// manages its keys from the command line (keygate keys ..., keygate
// identities ..., keygate admin ..., keygate pepper ...). Run keygate --help for every command; its
// exit codes are 0 done, 1 refused, 2 wrong usage, 3 unavailable.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
	"github.com/keygate/keygate/cmd/keygate/internal/root"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := root.Main(ctx, cmdutil.System(), os.Args[1:])
	stop()
	os.Exit(code)
}
