package main

import (
	"context"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"serialbox/serializer"
	"serialbox/serializer/upstream"
	"serialbox/station"
	"serialbox/store"
	"serialbox/web"
)

// stationHandover bounds how long a reload waits for a station's old print worker to
// finish the label it is sending before the send is cut off.
const stationHandover = 30 * time.Second

// reloader applies a changed configuration file to the running appliance: products,
// stations, printers, templates, upstream targets and the allow list. Requests in
// flight are not dropped: the catalog and the allow list are swapped atomically, and
// only the print workers and syncer whose settings changed are replaced. A print
// worker being replaced finishes the label it is sending first; a product or template
// change reaches the workers in place.
type reloader struct {
	mu     sync.Mutex
	path   string // "" = the built-in demo
	cfg    Config // the running configuration
	db     *store.DB
	svc    *serializer.Service
	pool   *station.Pool
	views  printerViews
	syncer *upstream.Syncer
	web    *web.Server
	logger *slog.Logger
}

// Reload reads the configuration file again. A file that does not load or validate is
// refused with the key that is wrong, and the running configuration stays.
func (r *reloader) Reload(ctx context.Context, actor string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	next, err := loadConfig(r.path, os.Getenv)
	if err == nil {
		// Where the appliance listens and keeps its data changes only with a restart.
		if next.Listen != r.cfg.Listen || next.DataDir != r.cfg.DataDir {
			r.logger.Warn("listen and data_dir take effect at the next start only")
		}
		next.Listen, next.DataDir, next.groupCommit = r.cfg.Listen, r.cfg.DataDir, r.cfg.groupCommit
		err = next.Validate()
	}
	if err != nil {
		r.logger.Error("configuration reload refused; the running configuration stays", "err", err)
		r.audit(ctx, actor, "config.reload.refused", err.Error())
		return serializer.Errorf(serializer.EINVALID, "configuration refused, the running one stays: %v", err)
	}
	if err := r.svc.SetCatalog(ctx, next.Catalog()); err != nil {
		return err
	}

	var changed []string
	labels := newLabels(&next)
	labelsChanged := !reflect.DeepEqual(r.cfg.Products, next.Products) || !reflect.DeepEqual(r.cfg.Templates, next.Templates)
	// The old workers' labels in flight finish even when the request that asked for
	// the reload goes away.
	hctx := context.WithoutCancel(ctx)
	for _, st := range next.Stations {
		i := slices.IndexFunc(r.cfg.Stations, func(o StationConfig) bool { return o.ID == st.ID })
		if i >= 0 && reflect.DeepEqual(r.cfg.Stations[i], st) {
			if w, ok := r.pool.Worker(st.ID); ok && labelsChanged {
				w.SetRenderer(labels.renderer(r.db, st))
				changed = append(changed, "labels of station "+st.ID)
			}
			continue
		}
		w, err := newStationWorker(&next, labels, st, r.db, r.logger, false)
		if err != nil {
			// The catalog already lists the station; its jobs wait until a reload fixes it.
			r.logger.Error("station not restarted", "station", st.ID, "err", err)
			continue
		}
		r.views.transports.Store(st.ID, st.Printer.Transport)
		if err := r.handover(hctx, func(ctx context.Context) error { return r.pool.Replace(ctx, w) }); err != nil {
			r.logger.Warn("old print worker stopped with an error", "station", st.ID, "err", err)
		}
		changed = append(changed, "station "+st.ID)
	}
	for _, old := range r.cfg.Stations {
		if !slices.ContainsFunc(next.Stations, func(s StationConfig) bool { return s.ID == old.ID }) {
			if err := r.handover(hctx, func(ctx context.Context) error { return r.pool.Remove(ctx, old.ID) }); err != nil {
				r.logger.Warn("removed station's print worker stopped with an error", "station", old.ID, "err", err)
			}
			r.views.transports.Delete(old.ID)
			changed = append(changed, "removed station "+old.ID)
		}
	}

	old := r.syncer
	if !reflect.DeepEqual(r.cfg.Upstream, next.Upstream) || labelsChanged {
		syncer, err := startSyncer(&next, r.db, r.logger.With("component", "upstream"))
		if err != nil {
			r.logger.Error("upstream targets not restarted", "err", err)
		} else {
			r.syncer = syncer
			changed = append(changed, "upstream targets")
		}
	}
	// The new syncer is told of closes before the old one stops.
	all, auto := next.syncTargets()
	r.svc.SetSyncTargets(all, auto, r.syncer)
	if old != r.syncer {
		old.Close()
	}

	allow, _ := web.ParseAllow(next.Allow) // checked by Validate
	r.web.SetAllow(allow)
	r.cfg = next
	detail := "nothing changed"
	if len(changed) > 0 {
		detail = "changed: " + strings.Join(changed, ", ")
	}
	r.logger.Info("configuration reloaded", "config", next.Source, "detail", detail)
	r.audit(ctx, actor, "config.reload", detail)
	return nil
}

// handover runs a print worker swap with the time its old worker has to finish.
func (r *reloader) handover(ctx context.Context, swap func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, stationHandover)
	defer cancel()
	return swap(ctx)
}

func (r *reloader) audit(ctx context.Context, actor, action, detail string) {
	if err := r.db.Record(ctx, serializer.AuditEntry{Actor: actor, Action: action, Subject: "config", Detail: detail}); err != nil {
		r.logger.Error("could not record the reload in the audit trail", "err", err)
	}
}

// Close stops the current syncer.
func (r *reloader) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.syncer.Close()
}
