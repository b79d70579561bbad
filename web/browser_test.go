package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"serialbox/serializer"
	"serialbox/web"
)

// chromiumPath finds Debian's chromium. CI must have it; elsewhere the browser tests
// say so and skip.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed; CI must run the browser tests (apt-get install -y chromium)")
	}
	t.Skip("chromium is not installed (apt-get install -y chromium): skipping the browser tests")
	return ""
}

// newBrowser starts a fresh headless chromium and returns a tab's context.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	// The first call starts the browser and ties it to ctx, which has no deadline;
	// each step later gets its own.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// screenshotDir is where the browser test leaves its screenshots: SERIALBOX_SCREENSHOTS
// when set (to keep them), else the test's temporary folder.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("SERIALBOX_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

func screenshot(t *testing.T, dir, name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tab *chromedp.Target) error {
		png, err := chromedp.FullScreenshot(100)(ctx, tab)
		if err != nil {
			return err
		}
		path := filepath.Join(dir, name+".png")
		t.Logf("screenshot %s", path)
		return os.WriteFile(path, png, 0o644)
	})
}

// mutablePrinters lets the test change a printer's state while the page is open.
type mutablePrinters struct{ views chan fakePrinters }

func (m mutablePrinters) Printer(id string) (web.PrinterView, bool) {
	v := <-m.views
	m.views <- v
	p, ok := v[id]
	return p, ok
}

// The whole shift in a real browser: log in, open a batch, serialize through the jig
// API while the line view updates live, look a unit up by a typo'd claim ID, reprint
// its label, verify labels (and catch a mismatch), close the batch, download the
// manifest, log out.
func TestBrowserShift(t *testing.T) {
	chromiumPath(t)
	printers := mutablePrinters{views: make(chan fakePrinters, 1)}
	printers.views <- fakePrinters{
		"line1": {Transport: "tcp", State: "ready", Message: "Ready"},
		"line2": {Transport: "tcp", State: "paper_out", Message: "Paper out: load labels"},
	}
	f := newFixture(t, web.Options{},
		serializer.Station{ID: "line1", Name: "Line 1 · final test", ProductID: productID},
		serializer.Station{ID: "line2", Name: "Line 2 · rework", ProductID: "TESTPRODUCT01", AutoBatch: true})
	f.srv = web.New(f.svc, web.Options{Printers: printers, Queue: f.db, Line: f.db, Accounts: f.accounts})
	ts := httptest.NewServer(f.srv)
	t.Cleanup(ts.Close)
	t.Cleanup(f.srv.CloseStreams)
	ctx := newBrowser(t) // cleaned up first: the browser goes before the server
	shots := screenshotDir(t)
	url := func(p string) string { return ts.URL + p }
	jig := func(station string) string {
		t.Helper()
		resp, err := http.Post(url("/ioto/serialize?station="+station), "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct{ ID string }
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || json.Unmarshal(body, &out) != nil || out.ID == "" {
			t.Fatalf("jig: %d %s", resp.StatusCode, body)
		}
		return out.ID
	}
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	eval := func(expr string) string {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		v, err := chromedp.Run(sctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		return v
	}
	text := func(sel string) string {
		t.Helper()
		return eval(fmt.Sprintf(`document.querySelector(%q).innerText`, sel))
	}
	// scan types into a field as a scanner does, ending with Enter, and waits for
	// the page the form leads to.
	scan := func(sel, value string) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if _, err := chromedp.RunResponse(sctx, chromedp.SendKeys(chromedp.CSS(sel), value+kb.Enter)); err != nil {
			t.Fatalf("scan %q into %s: %v", value, sel, err)
		}
	}
	poll := func(expr string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tab *chromedp.Target) error {
			_, err := chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(10*time.Second))(ctx, tab)
			return err
		})
	}

	run("log in",
		chromedp.Navigate(url("/batches")),
		chromedp.WaitVisible(chromedp.CSS("#name")),
		chromedp.SendKeys(chromedp.CSS("#name"), "tester"),
		chromedp.SendKeys(chromedp.CSS("#password"), "tester-password"),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#open-batch")),
	)
	run("open a batch",
		chromedp.SetValue(chromedp.CSS("#station"), "line1"),
		chromedp.SendKeys(chromedp.CSS("#planned"), "50"),
		chromedp.Submit(chromedp.CSS("#open-batch")),
		chromedp.WaitVisible(chromedp.CSS(".flash.ok")),
	)
	if got := text(".flash.ok"); !strings.Contains(got, "Batch 1 is open at station line1") {
		t.Fatalf("after opening: %q", got)
	}

	// The line view updates by itself: a marker set in the page survives, so the page
	// was not reloaded.
	run("line view",
		chromedp.Navigate(url("/")),
		chromedp.WaitVisible(chromedp.CSS("#live.on")),
	)
	eval(`window.serialboxMarker = "same page"`)
	if got := text("#banner"); !strings.Contains(got, "Line 2 · rework: printer Paper out") {
		t.Fatalf("banner = %q", got)
	}
	var ids []string
	for range 3 {
		ids = append(ids, jig("line1"))
	}
	jig("line2")
	first := serializer.MustParse(ids[0]).Grouped()
	run("live update",
		poll(`document.querySelector('#station-line1 [data-count=issued]').textContent.trim() === "3"`),
		poll(fmt.Sprintf(`document.getElementById("line").textContent.includes(%q)`, first)),
	)
	if eval(`window.serialboxMarker`) != "same page" {
		t.Fatal("the line view reloaded instead of updating live")
	}
	// A printer fault reaches the banner without a reload too.
	v := <-printers.views
	v["line1"] = web.PrinterView{Transport: "tcp", State: "head_open", Message: "Print head open: close the print head"}
	printers.views <- v
	run("printer fault shows live",
		poll(`document.getElementById("banner").textContent.includes("Line 1 · final test: printer Head open")`),
		screenshot(t, shots, "line-view"),
	)
	if eval(`window.serialboxMarker`) != "same page" {
		t.Fatal("the line view reloaded for the printer fault")
	}

	// Scan-to-lookup with a claim ID typed with typos.
	run("lookup",
		chromedp.Navigate(url("/lookup")),
		chromedp.WaitVisible(chromedp.CSS("#q")),
		chromedp.SendKeys(chromedp.CSS("#q"), typo(ids[0])+kb.Enter),
		chromedp.WaitVisible(chromedp.CSS("#device")),
	)
	if got := text("#device h1"); got != first {
		t.Fatalf("lookup shows %q, want %s", got, first)
	}
	run("reprint without a reason is refused",
		chromedp.Click(chromedp.CSS("#reprint")),
		chromedp.WaitVisible(chromedp.CSS("#error")),
	)
	if got := text("#error"); !strings.Contains(got, "a reason is required") {
		t.Fatalf("error = %q", got)
	}
	run("reprint",
		chromedp.SendKeys(chromedp.CSS("#reprint-reason"), "label smudged"),
		chromedp.Click(chromedp.CSS("#reprint")),
		chromedp.WaitVisible(chromedp.CSS(".flash.ok")),
		screenshot(t, shots, "lookup"),
	)
	if got := text("#jobs"); !strings.Contains(got, "reprint") || !strings.Contains(got, "label smudged") {
		t.Fatalf("label jobs after reprint: %q", got)
	}

	// Verification: OK, then the same label again, then a unit of another batch.
	other := jig("line2")
	run("verify OK",
		chromedp.Navigate(url("/verify?batch=1")),
		chromedp.WaitVisible(chromedp.CSS("#scan")),
		chromedp.SendKeys(chromedp.CSS("#scan"), "https://manager.example.com/claim?id="+ids[1]+kb.Enter),
		chromedp.WaitVisible(chromedp.CSS("#result.result-ok")),
	)
	scan("#scan", ids[1])
	if got := text("#result"); !strings.Contains(got, "SCANNED TWICE") || eval(`document.getElementById("result").className`) != "result result-bad" {
		t.Fatalf("second scan: %q", got)
	}
	scan("#scan", other)
	if got := text("#result"); !strings.Contains(got, "OTHER BATCH") {
		t.Fatalf("scan of another batch's unit: %q", got)
	}
	run("screenshot", screenshot(t, shots, "verify-mismatch"))
	if focused := eval(`document.activeElement.id`); focused != "scan" {
		t.Fatalf("focus is on %q, not the scan field", focused)
	}

	// Close the batch and download its manifest.
	run("close batch",
		chromedp.Navigate(url("/batches/1")),
		chromedp.WaitVisible(chromedp.CSS("#close-batch")),
		chromedp.SendKeys(chromedp.CSS(`#close-batch input[name=reason]`), "end of shift"),
		chromedp.Submit(chromedp.CSS("#close-batch")),
		chromedp.WaitVisible(chromedp.CSS(".flash.ok")),
		screenshot(t, shots, "batch"),
	)
	manifest := eval(`fetch(document.querySelector('a[href$="format=csv"]').href).then(r => r.text())`)
	if got := text(".flash.ok"); !strings.Contains(got, "Batch 1 is closed: 3 issued") {
		t.Fatalf("close: %q", got)
	}
	if !strings.HasPrefix(manifest, "uci,display,batch") || strings.Count(manifest, "\n") != 4 || !strings.Contains(manifest, ids[2]) {
		t.Fatalf("manifest:\n%s", manifest)
	}
	b, _ := f.svc.Batch(context.Background(), 1)
	if b.State != serializer.BatchClosed || b.Counts.Verified != 1 {
		t.Fatalf("batch = %+v", b)
	}

	run("log out",
		chromedp.Click(chromedp.CSS("#logout")),
		chromedp.WaitVisible(chromedp.CSS("#login")),
	)
	if got := text(".flash.ok"); !strings.Contains(got, "logged out") {
		t.Fatalf("after logout: %q", got)
	}
	run("pages need a login again", chromedp.Navigate(url("/lookup")), chromedp.WaitVisible(chromedp.CSS("#login")))
	if location := eval(`location.href`); !strings.Contains(location, "/login?next=") {
		t.Fatalf("after logout /lookup went to %s", location)
	}
	audit, _ := f.db.Audit(context.Background(), "device:"+ids[0], 0)
	if len(audit) != 1 || audit[0].Actor != "tester" || audit[0].Reason != "label smudged" {
		t.Fatalf("reprint audit = %+v", audit)
	}
}
