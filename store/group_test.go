package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"serialbox/serializer"
	"serialbox/store"
)

// issueConcurrently runs n Issue calls at once and returns their results in order.
func issueConcurrently(svc *serializer.Service, n int, req func(i int) serializer.IssueRequest) ([]serializer.Issued, []error) {
	got, errs := make([]serializer.Issued, n), make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { got[i], errs[i] = svc.Issue(context.Background(), req(i)) })
	}
	wg.Wait()
	return got, errs
}

// Requests committed together do not affect each other: the ones over the batch's
// planned size are refused, the rest are issued, and the counters agree.
func TestGroupCommitMixedOutcomes(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	svc := newService(t, db, serializer.Station{ID: "line1", ProductID: productID})
	b, err := svc.OpenBatch(ctx, serializer.OpenBatchRequest{StationID: "line1", Planned: 100}, "test")
	if err != nil {
		t.Fatal(err)
	}
	got, errs := issueConcurrently(svc, 200, func(int) serializer.IssueRequest { return serializer.IssueRequest{} })
	issued, full := 0, 0
	for i, err := range errs {
		switch serializer.ErrorCode(err) {
		case "":
			issued++
			if _, err := db.Device(ctx, got[i].Device.UCI); err != nil {
				t.Fatalf("issued UCI %s not stored: %v", got[i].Device.UCI, err)
			}
		case serializer.EBATCHFULL:
			full++
		default:
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if issued != 100 || full != 100 {
		t.Fatalf("issued %d, refused as full %d; want 100 and 100", issued, full)
	}
	after, _ := db.Batch(ctx, b.ID)
	if n, _ := db.DeviceCount(ctx); n != 100 || after.Counts.Issued != 100 {
		t.Fatalf("devices %d, batch counter %d; want 100", n, after.Counts.Issued)
	}
	if st := db.GroupStats(); st.Groups >= st.Requests || st.MaxGroup < 2 {
		t.Fatalf("group stats %+v: 200 concurrent requests were never committed together", st)
	}
}

// Many requests for one identity in flight at once get one UCI and one device row.
func TestGroupCommitSameIdentityRacing(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	svc := newService(t, db, autoStation)
	got, errs := issueConcurrently(svc, 64, func(i int) serializer.IssueRequest {
		return serializer.IssueRequest{Identity: fmt.Sprintf("hwid:H%d", i%4)}
	})
	byIdentity := map[string]serializer.UCI{}
	for i, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("hwid:H%d", i%4)
		if u, seen := byIdentity[id]; seen && u != got[i].Device.UCI {
			t.Fatalf("%s got %s and %s", id, u, got[i].Device.UCI)
		}
		byIdentity[id] = got[i].Device.UCI
	}
	if n, _ := db.DeviceCount(ctx); n != 4 {
		t.Fatalf("devices = %d, want 4", n)
	}
}

func TestGroupCommitOff(t *testing.T) {
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "serialbox.db"), store.Options{GroupCommit: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	svc := newService(t, db, autoStation)
	_, errs := issueConcurrently(svc, 50, func(int) serializer.IssueRequest { return serializer.IssueRequest{} })
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if st := db.GroupStats(); st.MaxGroup != 1 || st.Groups != 50 {
		t.Fatalf("group stats %+v; want 50 groups of one", st)
	}
}

// Close finishes what is queued; later requests are refused as unavailable.
func TestCloseFinishesQueuedIssues(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "serialbox.db")
	db, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	svc := newService(t, db, autoStation)
	var wg sync.WaitGroup
	results := make(chan error, 100)
	for range 100 {
		wg.Go(func() {
			_, err := svc.Issue(ctx, serializer.IssueRequest{})
			results <- err
		})
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(results)
	ok := 0
	for err := range results {
		switch serializer.ErrorCode(err) {
		case "":
			ok++
		case serializer.EUNAVAILABLE:
		default:
			t.Fatalf("issue during close: %v", err)
		}
	}
	db2 := mustOpenAt(t, path)
	if n, _ := db2.DeviceCount(ctx); n != int64(ok) {
		t.Fatalf("%d issues answered, %d stored", ok, n)
	}
	if _, err := svc.Issue(ctx, serializer.IssueRequest{}); serializer.ErrorCode(err) != serializer.EUNAVAILABLE {
		t.Fatalf("issue after close: %v", err)
	}
}

// BenchmarkIssue measures durable issuance through the Service with 64 concurrent
// callers, committing in groups and one by one.
func BenchmarkIssue(b *testing.B) {
	for _, group := range []int{1, store.DefaultGroupCommit} {
		b.Run(fmt.Sprintf("group=%d", group), func(b *testing.B) {
			db, err := store.Open(context.Background(), filepath.Join(b.TempDir(), "serialbox.db"), store.Options{GroupCommit: group})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			svc := newService(b, db, autoStation)
			b.SetParallelism(32) // 64 goroutines on two cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := svc.Issue(context.Background(), serializer.IssueRequest{}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ucis/s")
			st := db.GroupStats()
			b.ReportMetric(float64(st.Requests)/float64(max(st.Groups, 1)), "ucis/commit")
		})
	}
}
