package serializer_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"serialbox/serializer"
)

// closingRepo is a Repository whose batches close and queue for upstream at once.
// Only the methods the test calls are implemented.
type closingRepo struct {
	serializer.Repository
	autoSeen atomic.Int64 // closes that were given auto targets
}

func (r *closingRepo) CloseBatch(_ context.Context, id int64, _, _ string, autoSync []string) (serializer.Batch, error) {
	if len(autoSync) > 0 {
		r.autoSeen.Add(1)
	}
	return serializer.Batch{ID: id, State: serializer.BatchClosed}, nil
}

func (r *closingRepo) EnqueueSync(_ context.Context, _ int64, targets []string, _, _ string) (map[string]int, error) {
	out := map[string]int{}
	for _, t := range targets {
		out[t] = 1
	}
	return out, nil
}

// wakeCounter is a SyncQueue counting its wake-ups.
type wakeCounter struct{ n atomic.Int64 }

func (w *wakeCounter) Wake() { w.n.Add(1) }

// A configuration reload replaces the sync targets and the syncer while operators
// close batches and queue them: under -race this is clean, every close and every sync
// request wakes a syncer, and every close is given the auto targets.
func TestSyncTargetsReloadDuringCloses(t *testing.T) {
	repo := &closingRepo{}
	svc := serializer.NewService(repo, nil)
	queues := []*wakeCounter{{}, {}}
	svc.SetSyncTargets([]string{"cloud"}, []string{"cloud"}, queues[0])

	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var closes, syncs atomic.Int64
	for range 4 {
		wg.Go(func() {
			for i := int64(1); ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := svc.CloseBatch(ctx, i, "anna", "end of shift"); err != nil {
					t.Error(err)
					return
				}
				closes.Add(1)
				if _, err := svc.RequestSync(ctx, i, nil, "anna", "again"); err != nil {
					t.Error(err)
					return
				}
				syncs.Add(1)
				if all := svc.SyncTargets(); !slices.Equal(all, []string{"cloud"}) && !slices.Equal(all, []string{"cloud", "export"}) {
					t.Errorf("SyncTargets() = %v", all)
					return
				}
			}
		})
	}
	for i := range 2000 {
		q := queues[i%2]
		if i%2 == 0 {
			svc.SetSyncTargets([]string{"cloud"}, []string{"cloud"}, q)
		} else {
			svc.SetSyncTargets([]string{"cloud", "export"}, []string{"cloud"}, q)
		}
	}
	close(stop)
	wg.Wait()
	woken := queues[0].n.Load() + queues[1].n.Load()
	if want := closes.Load() + syncs.Load(); woken != want {
		t.Fatalf("%d closes and %d sync requests woke the syncers %d times, want %d", closes.Load(), syncs.Load(), woken, want)
	}
	if repo.autoSeen.Load() != closes.Load() {
		t.Fatalf("%d of %d closes were given the auto targets", repo.autoSeen.Load(), closes.Load())
	}
}

// The service refuses a catalog that breaks the rules and keeps the one it has.
func TestSetCatalogValidates(t *testing.T) {
	svc := serializer.NewService(&closingRepo{}, nil)
	bad := serializer.Catalog{Products: []serializer.Product{{ID: "widget"}}, Stations: []serializer.Station{{ID: "a", ProductID: "gadget"}}}
	if err := svc.SetCatalog(t.Context(), bad); serializer.ErrorCode(err) != serializer.EUNKNOWNPRODUCT {
		t.Fatalf("SetCatalog(unknown product) = %v", err)
	}
	if len(svc.Catalog().Stations) != 0 {
		t.Fatal("a refused catalog became current")
	}
}
