package store_test

import (
	"context"
	"testing"

	"serialbox/serializer"
)

func TestVerify(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	svc := newService(t, db,
		serializer.Station{ID: "line1", ProductID: productID},
		serializer.Station{ID: "line2", ProductID: productID})
	b1, err := svc.OpenBatch(ctx, serializer.OpenBatchRequest{StationID: "line1"}, "test")
	if err != nil {
		t.Fatal(err)
	}
	b2, err := svc.OpenBatch(ctx, serializer.OpenBatchRequest{StationID: "line2"}, "test")
	if err != nil {
		t.Fatal(err)
	}
	issue := func(station string) serializer.UCI {
		got, err := svc.Issue(ctx, serializer.IssueRequest{StationID: station})
		if err != nil {
			t.Fatal(err)
		}
		return got.Device.UCI
	}
	good, twice, voided, other, closedOne := issue("line1"), issue("line1"), issue("line1"), issue("line2"), issue("line2")
	if _, err := svc.Void(ctx, voided, "test", "scrapped"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Verify(ctx, twice, serializer.VerifyRequest{BatchID: b1.ID}, "anna"); err != nil {
		t.Fatal(err)
	}
	unknown := serializer.MustParse("ZZZZZZZZZZZZZZZZ")
	for _, tc := range []struct {
		name string
		uci  serializer.UCI
		req  serializer.VerifyRequest
		code string
	}{
		{"unknown UCI", unknown, serializer.VerifyRequest{BatchID: b1.ID}, serializer.ENOTFOUND},
		{"voided", voided, serializer.VerifyRequest{BatchID: b1.ID}, serializer.EVOIDED},
		{"other batch", other, serializer.VerifyRequest{BatchID: b1.ID}, serializer.EWRONGBATCH},
		{"other station's batch", good, serializer.VerifyRequest{StationID: "line2"}, serializer.EWRONGBATCH},
		{"scanned twice", twice, serializer.VerifyRequest{BatchID: b1.ID}, serializer.EVERIFIED},
		{"no such batch", good, serializer.VerifyRequest{BatchID: 99}, serializer.ENOTFOUND},
		{"unknown station", good, serializer.VerifyRequest{StationID: "nope"}, serializer.EUNKNOWNSTATION},
		{"bad batch number", good, serializer.VerifyRequest{BatchID: -1}, serializer.EINVALID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := db.Batch(ctx, b1.ID)
			_, err := svc.Verify(ctx, tc.uci, tc.req, "anna")
			if serializer.ErrorCode(err) != tc.code || serializer.ErrorMessage(err) == "" {
				t.Fatalf("verify = %v; want code %s", err, tc.code)
			}
			if after, _ := db.Batch(ctx, b1.ID); after.Counts != before.Counts {
				t.Fatalf("a refused scan changed the counters: %+v → %+v", before.Counts, after.Counts)
			}
		})
	}
	// Right batch, by number, by station, or by the device's own station.
	d, err := svc.Verify(ctx, good, serializer.VerifyRequest{}, "anna")
	if err != nil || d.State != serializer.DeviceVerified {
		t.Fatalf("verify = %+v, %v", d, err)
	}
	if _, err := svc.Verify(ctx, other, serializer.VerifyRequest{StationID: "line2"}, "anna"); err != nil {
		t.Fatal(err)
	}
	got, _ := db.Batch(ctx, b1.ID)
	if got.Counts.Verified != 2 || got.Counts.Labeled != 2 || got.Counts.Voided != 1 {
		t.Fatalf("counters = %+v", got.Counts)
	}
	audit, _ := db.Audit(ctx, "device:"+good.String(), 0)
	if len(audit) == 0 || audit[0].Action != "device.verify" || audit[0].Actor != "anna" {
		t.Fatalf("audit = %+v", audit)
	}
	// A closed batch is not verified against.
	if _, err := svc.CloseBatch(ctx, b2.ID, "test", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Verify(ctx, closedOne, serializer.VerifyRequest{BatchID: b2.ID}, "anna"); serializer.ErrorCode(err) != serializer.ECONFLICT {
		t.Fatalf("closed batch: %v", err)
	}
	if _, err := svc.Verify(ctx, closedOne, serializer.VerifyRequest{}, "anna"); serializer.ErrorCode(err) != serializer.ENOBATCH {
		t.Fatalf("station without open batch: %v", err)
	}
}
