package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"serialbox/serializer"
	"serialbox/station"
	"serialbox/store"
	"serialbox/web"
)

// shutdownTimeout bounds how long in-flight requests may finish after a stop signal.
const shutdownTimeout = 10 * time.Second

func runServe(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	configPath := fs.String("config", configFromEnv(), "configuration file (TOML); none = the built-in demo")
	listen := fs.String("listen", "", "address to listen on (overrides the config's listen)")
	dataDir := fs.String("data", "", "data folder (overrides the config's data_dir)")
	group := fs.Int("group-commit", store.DefaultGroupCommit, "most UCIs committed in one transaction (1 = each alone; for measurements)")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	cfg, err := loadConfig(*configPath, os.Getenv)
	if err != nil {
		return err
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	if *dataDir != "" {
		cfg.DataDir = *dataDir
	}
	if err := cfg.Validate(); err != nil {
		if *configPath != "" {
			return fmt.Errorf("config %s: %w", *configPath, err)
		}
		return err
	}
	if *group < 1 {
		fmt.Fprintln(stderr, "serialbox serve: --group-commit must be at least 1")
		return errUsage
	}
	cfg.groupCommit = *group
	cfg.path = *configPath
	return serve(ctx, cfg, newLogger(stderr, cfg.LogLevel))
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

// serve runs the appliance until ctx is cancelled, then shuts down in order: stop
// taking requests and let in-flight ones finish, stop the station workers, close the
// database.
func serve(ctx context.Context, cfg Config, logger *slog.Logger) error {
	start := time.Now()
	// SIGHUP reloads the configuration. Catch it from the start: its default action
	// would end the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	release, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	defer release()
	db, err := store.Open(ctx, filepath.Join(cfg.DataDir, "serialbox.db"), store.Options{
		Logger: logger.With("component", "store"), GroupCommit: cfg.groupCommit,
	})
	if err != nil {
		return err
	}
	defer db.Close()
	// Started after the database is open and stopped after it is closed (deferred
	// before it), so that the last commits reach the replica too.
	rep, err := startReplication(&cfg, db.Path(), logger.With("component", "replicate"))
	if err != nil {
		return err
	}
	defer rep.Close()
	defer db.Close()
	evs, err := startEvents(ctx, &cfg, db, logger.With("component", "mqtt"))
	if err != nil {
		return err
	}
	defer evs.Close()

	pool := station.NewPool()
	// Runs after the HTTP server stopped and before db.Close: labels being sent reach
	// their printers and are recorded, for a few seconds at the most.
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := pool.Stop(ctx); err != nil {
			logger.Warn("print workers stopped with an error", "err", err)
		}
	}()
	svc := serializer.NewService(db, pool)
	if err := svc.SetCatalog(ctx, cfg.Catalog()); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := svc.LoadStationTokens(ctx); err != nil {
		return err
	}
	if err := startStations(&cfg, db, pool, logger); err != nil {
		return err
	}
	syncer, err := startSyncer(&cfg, db, logger.With("component", "upstream"))
	if err != nil {
		return err
	}
	defer startBackups(&cfg, logger.With("component", "backup")).Close()
	all, auto := cfg.syncTargets()
	svc.SetSyncTargets(all, auto, syncer)
	views := newPrinterViews(&cfg, pool)
	reload := &reloader{path: cfg.path, cfg: cfg, db: db, svc: svc, pool: pool, views: views, syncer: syncer,
		logger: logger.With("component", "config")}
	defer reload.Close()
	accounts := serializer.NewAccounts(db)
	if err := firstSupervisor(ctx, accounts, cfg.AdminPassword, cfg.DataDir, logger); err != nil {
		return err
	}
	allow, _ := web.ParseAllow(cfg.Allow) // checked by Validate
	handler := web.New(svc, web.Options{
		Allow: allow, DB: db, Queue: db, Printers: views,
		Accounts: accounts, Line: db, Stats: db, Reload: reload.Reload, Logger: logger.With("component", "web"),
		MaxEventStreams: cfg.MaxEventStreams, Offsite: offsite{rep: rep, events: evs},
	})
	reload.web = handler

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(handler.CloseStreams)
	served := make(chan error, 2)
	go func() { served <- srv.Serve(ln) }()
	var tlsSrv *http.Server
	if cfg.TLS.Listen != "" {
		tc, fp, err := loadTLS(&cfg)
		if err != nil {
			return err
		}
		tln, err := net.Listen("tcp", cfg.TLS.Listen)
		if err != nil {
			return fmt.Errorf("tls.listen: %w", err)
		}
		tlsSrv = &http.Server{
			Handler: handler, TLSConfig: tc,
			ReadHeaderTimeout: srv.ReadHeaderTimeout, ReadTimeout: srv.ReadTimeout,
			WriteTimeout: srv.WriteTimeout, IdleTimeout: srv.IdleTimeout, ErrorLog: srv.ErrorLog,
		}
		tlsSrv.RegisterOnShutdown(handler.CloseStreams)
		go func() { served <- tlsSrv.ServeTLS(tln, "", "") }()
		logger.Info("serving TLS", "addr", tln.Addr().String(), "sha256", fp)
	}
	logger.Info("serving", "addr", ln.Addr().String(), "config", cfg.Source, "data", cfg.DataDir,
		"stations", len(cfg.Stations), "version", version, "startup", time.Since(start).Round(time.Millisecond))

wait:
	for {
		select {
		case err := <-served:
			return fmt.Errorf("http server: %w", err)
		case <-ctx.Done():
			break wait
		case <-hup:
			reload.Reload(ctx, "signal:SIGHUP") // a refused file is logged and audited
		}
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if tlsSrv != nil {
		if err := tlsSrv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Warn("in-flight HTTPS requests did not finish in time", "err", err)
		}
	}
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Warn("in-flight requests did not finish in time", "err", err)
	}
	return nil
}
