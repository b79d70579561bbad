package station_test

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"

	"serialbox/station"
	"serialbox/station/stationtest"
)

// zplLabel returns a ZPL label of about size bytes that names n.
func zplLabel(n int64, size int) []byte {
	head := fmt.Sprintf("^XA^CI28^PW400^LL240^FO20,20^A0N,30,30^FH^FDlabel %d^FS^FO20,60^BQN,2,4^FH^FDQA,", n)
	tail := "^FS^XZ"
	pad := max(size-len(head)-len(tail), 0)
	return []byte(head + string(bytes.Repeat([]byte{'A' + byte(n%26)}, pad)) + tail)
}

// startPrinter starts a fake network printer that stops with the test.
func startPrinter(t testing.TB) *stationtest.FakePrinter {
	t.Helper()
	p, err := stationtest.StartFakePrinter("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// testCtx is a context that ends with the test, after at most d.
func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// fastTimeouts keep fault tests short.
var fastTimeouts = station.Timeouts{Connect: time.Second, Write: 2 * time.Second, Reply: 500 * time.Millisecond, Finish: time.Second}

var labelID = regexp.MustCompile(`label (\d+)\^FS`)

// labelCounts counts the printer's labels per job, failing the test if a label
// is not from a job or comes after a later job's.
func labelCounts(t *testing.T, labels [][]byte) map[int64]int {
	t.Helper()
	count := map[int64]int{}
	last := int64(0)
	for _, l := range labels {
		m := labelID.FindSubmatch(l)
		if m == nil {
			t.Fatalf("label not from a job: %.60q", l)
		}
		id, _ := strconv.ParseInt(string(m[1]), 10, 64)
		count[id]++
		if id <= last {
			t.Errorf("label of job %d came after job %d's", id, last)
		}
		last = id
	}
	return count
}
