// Command serialbox is the serialization appliance: it issues unique claim IDs to
// test jigs, prints their labels and keeps the registry of devices and batches.
//
//	serialbox [serve] [--config FILE] [--listen ADDR] [--data DIR]
//	serialbox label --uci UCI [--product ID] [--batch ID] [--format zpl|tspl|pdf|png] [--config FILE]
//	serialbox export --batch ID [--format csv|jsonl] [--out FILE]
//	serialbox version
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

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = runServe(ctx, args, stderr)
	case "label":
		err = runLabel(ctx, args, stdout, stderr)
	case "export":
		err = runExport(ctx, args, stdout, stderr)
	case "pregen":
		err = runPregen(ctx, args, stdout, stderr)
	case "backup":
		err = runBackup(ctx, args, stdout, stderr)
	case "restore":
		err = runRestore(ctx, args, stdout, stderr)
	case "user":
		err = runUser(ctx, args, os.Stdin, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "serialbox", version)
	case "help":
		usage(stdout)
	default:
		fmt.Fprintf(stderr, "serialbox: unknown command %q\n\n", cmd)
		usage(stderr)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintln(stderr, "serialbox:", err)
		return 1
	}
}

// errUsage marks an error already reported by a flag set.
var errUsage = errors.New("usage")

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  serialbox [serve] [--config FILE] [--listen ADDR] [--data DIR]
      run the appliance (with no config file: the built-in demo)
  serialbox label --uci UCI [--product ID] [--batch ID] [--format zpl|tspl|pdf|png] [--config FILE]
      write one rendered label to standard output
  serialbox export --batch ID [--format csv|jsonl] [--out FILE] [--config FILE] [--data DIR]
      write a batch's manifest (every device, in issue order)
  serialbox user add NAME --role operator|supervisor [--api-key] [--password-stdin] [--config FILE] [--data DIR]
      add an operator account; prints a drawn password (and the API key) once
  serialbox user passwd NAME [--password-stdin] | user key NAME | user list
      set a new password, draw a new API key, list the operators
  serialbox pregen --batch ID --count N [--labels queue|outside] [--manifest FILE] [--sheet FILE.pdf]
      issue N UCIs into an open batch for pre-printed labels or unique-firmware builds
  serialbox backup --out FILE [--config FILE] [--data DIR]
      write a consistent copy of the database, also while serving
  serialbox restore --from FILE [--config FILE] [--data DIR]
      replace the database with a backup (refused while an appliance serves it)
  serialbox version
`)
}

// parseFlags parses args with fs, reporting errors on stderr.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "serialbox %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return errUsage
	}
	return nil
}
