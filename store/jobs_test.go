package store_test

import (
	"context"
	"strings"
	"testing"

	"serialbox/serializer"
	"serialbox/store"
)

// queuedJob issues one device at the auto-batch station and returns it with its
// label job, as the station's worker reads it.
func queuedJob(t *testing.T) (*store.DB, serializer.UCI, serializer.PrintJob) {
	t.Helper()
	ctx := context.Background()
	db := MustOpenDB(t)
	got, err := newService(t, db, autoStation).Issue(ctx, serializer.IssueRequest{})
	if err != nil {
		t.Fatal(err)
	}
	job, ok, err := db.NextJob(ctx, "demo")
	if err != nil || !ok || *job.UCI != got.Device.UCI {
		t.Fatalf("NextJob = %+v, %v, %v", job, ok, err)
	}
	return db, got.Device.UCI, job
}

// Label job moves are compare-and-set: a move from a state the job is no longer in
// changes nothing and says what the job is now.
func TestMoveJobIsCompareAndSet(t *testing.T) {
	ctx := context.Background()
	db, uci, job := queuedJob(t)
	if err := db.MoveJob(ctx, job.ID, serializer.JobQueued, serializer.JobSending, ""); err != nil {
		t.Fatal(err)
	}
	// A second worker that read the job as queued loses: the job stays with the first.
	err := db.MoveJob(ctx, job.ID, serializer.JobQueued, serializer.JobSending, "")
	if serializer.ErrorCode(err) != serializer.ECONFLICT || !strings.Contains(err.Error(), "is sending") {
		t.Fatalf("second move from queued: %v, want a conflict naming the state", err)
	}
	// The interrupted-delivery recovery of a later worker moves sending → uncertain ...
	if err := db.MoveJob(ctx, job.ID, serializer.JobSending, serializer.JobUncertain, "interrupted"); err != nil {
		t.Fatal(err)
	}
	// ... and the first worker's late "printed" does not overwrite it.
	err = db.MoveJob(ctx, job.ID, serializer.JobSending, serializer.JobPrinted, "")
	if serializer.ErrorCode(err) != serializer.ECONFLICT {
		t.Fatalf("late printed over uncertain: %v, want a conflict", err)
	}
	jobs, err := db.PrintJobs(ctx, uci)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("PrintJobs = %v, %v", jobs, err)
	}
	if j := jobs[0]; j.State != serializer.JobUncertain || j.Attempts != 1 || j.LastError != "interrupted" {
		t.Fatalf("job after the lost moves: %s, %d attempts, %q", j.State, j.Attempts, j.LastError)
	}
	if d, _ := db.Device(ctx, uci); d.State != serializer.DeviceIssued {
		t.Fatalf("a lost move to printed marked the device %s", d.State)
	}
	if err := db.MoveJob(ctx, 9999, serializer.JobQueued, serializer.JobSending, ""); serializer.ErrorCode(err) != serializer.ENOTFOUND {
		t.Fatalf("move of a missing job: %v", err)
	}
}

// A void between the worker reading a job and sending it wins: the job is cancelled
// and the worker's move to sending is refused.
func TestMoveJobAfterVoid(t *testing.T) {
	ctx := context.Background()
	db, uci, job := queuedJob(t)
	if _, err := db.Void(ctx, uci, "anna", "damaged"); err != nil {
		t.Fatal(err)
	}
	if err := db.MoveJob(ctx, job.ID, serializer.JobQueued, serializer.JobSending, ""); serializer.ErrorCode(err) != serializer.ECONFLICT {
		t.Fatalf("move of a cancelled job to sending: %v, want a conflict", err)
	}
	jobs, _ := db.PrintJobs(ctx, uci)
	if jobs[0].State != serializer.JobCancelled || jobs[0].Attempts != 0 {
		t.Fatalf("voided device's job is %s after %d attempts", jobs[0].State, jobs[0].Attempts)
	}
}
