// Command fakeprinter is a fake label printer for trying serialbox without
// hardware and for fault tests: a raw TCP (port 9100) network printer and,
// optionally, a serial printer on a pseudo-terminal. It cuts what it receives into
// labels (ending in ^XZ for ZPL, a PRINT line for TSPL), counts them, saves them
// as numbered files, and answers ZPL ~HS and TSPL ESC !? status queries.
//
//	fakeprinter --listen 127.0.0.1:9100 --out labels/
//	fakeprinter --serial --baud 9600 --count
//
// While it runs, SIGUSR1 toggles paper out and SIGUSR2 drops the printer off the
// network for five seconds, as a printer that is switched off and on.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"serialbox/station/stationtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "fakeprinter:", err)
		os.Exit(1)
	}
}

// fault is what a fake printer can be told to report.
type fault interface {
	SetPaperOut(bool)
	SetHeadOpen(bool)
	SetNoReply(bool)
	TogglePaperOut() bool
	Stats() stationtest.Stats
}

// run is the whole command; it returns when ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fakeprinter", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:9100", "TCP address to listen on (empty: no network printer)")
	out := fs.String("out", "", "folder to save each label in as a numbered file")
	count := fs.Bool("count", false, "print only the totals, not every label")
	serial := fs.Bool("serial", false, "also run a serial printer on a pseudo-terminal and print its path")
	baud := fs.Int("baud", 0, "serial: read no faster than this line speed (0: as fast as written)")
	paperOut := fs.Bool("paper-out", false, "start out of paper")
	headOpen := fs.Bool("head-open", false, "start with the print head open")
	noReply := fs.Bool("no-reply", false, "never answer status queries")
	dropAfter := fs.Int("drop-after", -1, "reset the first connection after this many bytes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *listen == "" && !*serial {
		return errors.New("nothing to run: give --listen or --serial")
	}
	if *out != "" {
		if err := os.MkdirAll(*out, 0o755); err != nil {
			return err
		}
	}
	var mu sync.Mutex // one writer for stdout
	logger := log.New(stdout, "", log.Ltime)
	logf := func(prefix string) func(string, ...any) {
		return func(format string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			logger.Printf(prefix+format, args...)
		}
	}

	var printers []fault
	var tcp *stationtest.FakePrinter
	if *listen != "" {
		tcp = stationtest.NewFakePrinter()
		tcp.OutDir = *out
		if !*count {
			tcp.Logf = logf("tcp: ")
		}
		tcp.DropAfter(*dropAfter)
		printers = append(printers, tcp)
	}
	if *serial {
		sp, err := stationtest.StartFakeSerialPrinter(*baud)
		if err != nil {
			return fmt.Errorf("serial printer: %w", err)
		}
		defer sp.Close()
		sp.OutDir = *out
		if !*count {
			sp.Logf = logf("serial: ")
		}
		printers = append(printers, sp)
		logf("")("serial printer on %s (use it as printer.device)", sp.Path())
	}
	for _, p := range printers {
		p.SetPaperOut(*paperOut)
		p.SetHeadOpen(*headOpen)
		p.SetNoReply(*noReply)
	}

	// Signals are set up before the printer announces itself, so that a signal
	// sent once it is up never kills it.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	if tcp != nil {
		if err := tcp.Start(*listen); err != nil {
			return err
		}
		defer tcp.Close()
		logf("")("network printer listening on %s", tcp.Addr())
	}

	for {
		select {
		case <-ctx.Done():
			for _, p := range printers {
				st := p.Stats()
				logf("")("totals: %d labels, %d partial, %d dropped, %d status queries, %d bytes, %d connections",
					st.Labels, st.Partial, st.Dropped, st.StatusQueries, st.Bytes, st.Connections)
			}
			return nil
		case s := <-sigs:
			switch s {
			case syscall.SIGUSR1:
				for _, p := range printers {
					logf("")("paper out: %v", p.TogglePaperOut())
				}
			case syscall.SIGUSR2:
				if tcp != nil {
					tcp.Kill()
					logf("")("network printer off for 5 s")
					select {
					case <-time.After(5 * time.Second):
					case <-ctx.Done():
						continue
					}
					if err := tcp.Restart(); err != nil {
						return err
					}
					logf("")("network printer back on %s", tcp.Addr())
				}
			}
		}
	}
}
