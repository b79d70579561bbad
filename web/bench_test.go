package web_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"serialbox/serializer"
	"serialbox/web"
)

// BenchmarkIotoSerialize measures the jig endpoint in process (no network), with 64
// concurrent callers and durable group commit: the HTTP handling on top of the store.
func BenchmarkIotoSerialize(b *testing.B) {
	f := newFixture(b, web.Options{}, serializer.Station{ID: "jig1", ProductID: "TESTPRODUCT01", AutoBatch: true})
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest("POST", "/ioto/serialize", strings.NewReader(iotoBody))
			req.RemoteAddr = "192.168.1.20:50000"
			rec := httptest.NewRecorder()
			f.srv.ServeHTTP(rec, req)
			if rec.Code != 200 {
				b.Errorf("status %d: %s", rec.Code, rec.Body.String())
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ucis/s")
}
