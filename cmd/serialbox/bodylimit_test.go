package main

import (
	"bufio"
	"bytes"
	"context"
	"debug/buildinfo"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// vmKB reads a memory figure (VmRSS, VmHWM) of a process from /proc, in KiB.
func vmKB(t *testing.T, pid int, field string) int {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc to measure memory: %v", err)
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				t.Fatalf("%s: %q", field, line)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// patternReader yields n bytes of filler without holding them in memory.
type patternReader struct{ n int64 }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.n {
		b = b[:p.n]
	}
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	p.n -= int64(len(b))
	return len(b), nil
}

// upload sends head and then body on a fresh connection while reading the answer,
// as a client that does not wait for the server to read everything; it returns the
// status, or 0 and the error when the connection broke without an answer.
func upload(addr, head string, body io.Reader) (int, string, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(90 * time.Second))
	go func() {
		if _, err := io.WriteString(conn, head); err != nil {
			return
		}
		io.Copy(conn, body) // stops when the server closes the connection
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, "", err
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, string(msg), nil
}

// excerpt is the message of an error page, or the start of a body that is not one.
func excerpt(page string) string {
	if _, rest, ok := strings.Cut(page, `id="error">`); ok {
		msg, _, _ := strings.Cut(rest, "<")
		return msg
	}
	return page[:min(len(page), 200)]
}

// chunked frames a body as HTTP/1.1 chunked transfer coding, without a length.
func chunked(r io.Reader) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				if _, werr := fmt.Fprintf(pw, "%x\r\n%s\r\n", n, buf[:n]); werr != nil {
					pw.CloseWithError(werr)
					return
				}
			}
			if err != nil {
				io.WriteString(pw, "0\r\n\r\n")
				pw.Close()
				return
			}
		}
	}()
	return pr
}

// Large uploads to the login form (unauthenticated, before any rate limit) are
// refused before they cost memory: 16 concurrent 48 MB multipart uploads and 8
// chunked 48 MB form bodies are answered 413 while the appliance stays under
// 100 MB resident.
func TestLoginUploadsDoNotBlowUpMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 1.1 GB over loopback")
	}
	dir := t.TempDir()
	a := startAppliance(t, filepath.Join(dir, "data"), "")
	pid := a.cmd.Process.Pid
	client := &http.Client{Timeout: 10 * time.Second}
	if resp, err := client.Get(a.url("/healthz")); err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	before := vmKB(t, pid, "VmRSS")

	const size = 48 << 20
	const boundary = "serialboxboundary"
	multipartHead := func(length int64) string {
		return "POST /login HTTP/1.1\r\nHost: " + a.addr + "\r\n" +
			"Content-Type: multipart/form-data; boundary=" + boundary + "\r\n" +
			"Content-Length: " + strconv.FormatInt(length, 10) + "\r\n\r\n"
	}
	multipartBody := func() (io.Reader, int64) {
		pre := "--" + boundary + "\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nadmin\r\n" +
			"--" + boundary + "\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nguess\r\n" +
			"--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.bin\"\r\n" +
			"Content-Type: application/octet-stream\r\n\r\n"
		post := "\r\n--" + boundary + "--\r\n"
		return io.MultiReader(strings.NewReader(pre), &patternReader{n: size}, strings.NewReader(post)), int64(len(pre) + size + len(post))
	}
	formHead := "POST /login HTTP/1.1\r\nHost: " + a.addr + "\r\n" +
		"Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n"
	formBody := func() io.Reader {
		return chunked(io.MultiReader(strings.NewReader("name=admin&password=guess&pad="), &patternReader{n: size}))
	}

	type result struct {
		kind   string
		status int
		msg    string
		err    error
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		results []result
	)
	add := func(kind string, status int, msg string, err error) {
		mu.Lock()
		results = append(results, result{kind, status, msg, err})
		mu.Unlock()
	}
	start := time.Now()
	for range 16 {
		wg.Go(func() {
			body, n := multipartBody()
			status, msg, err := upload(a.addr, multipartHead(n), body)
			add("multipart", status, msg, err)
		})
	}
	for range 8 {
		wg.Go(func() {
			status, msg, err := upload(a.addr, formHead, formBody())
			add("chunked form", status, msg, err)
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	after, peak := vmKB(t, pid, "VmRSS"), vmKB(t, pid, "VmHWM")
	t.Logf("RSS before %d KiB, after %d KiB, peak (VmHWM) %d KiB; 24 uploads answered in %v", before, after, peak, elapsed.Round(time.Millisecond))

	for _, r := range results {
		if r.status != http.StatusRequestEntityTooLarge {
			t.Errorf("%s upload: status %d %q, err %v; want 413", r.kind, r.status, excerpt(r.msg), r.err)
		} else if !strings.Contains(r.msg, "64 KiB") || bytes.HasPrefix(bytes.TrimSpace([]byte(r.msg)), []byte("{")) {
			t.Errorf("%s upload: the login page's 413 does not say the limit in words: %q", r.kind, excerpt(r.msg))
		}
	}
	limit := 100 << 10
	if info, err := buildinfo.ReadFile(binary); err == nil && slices.ContainsFunc(info.Settings, func(s debug.BuildSetting) bool { return s.Key == "-race" && s.Value == "true" }) {
		// The race detector multiplies what memory costs; bound what the uploads add.
		limit += before
	}
	if peak > limit {
		t.Errorf("the appliance reached %d MiB resident (VmHWM); want under %d MiB", peak>>10, limit>>10)
	}
	// The appliance still serves, and a proper login form still works.
	if resp, err := client.Get(a.url("/healthz")); err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz after the uploads: %v %v", resp, err)
	}
}

// The cap on live line views comes from the configuration file, and monitoring may
// ask the real daemon with HEAD.
func TestEventStreamCapFromConfig(t *testing.T) {
	dir := t.TempDir()
	a := startAppliance(t, filepath.Join(dir, "data"), writeConfig(t, "max_event_streams = 1\n"+iotoProductConfig))
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Head(a.url(path))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("HEAD %s: %v %v", path, resp, err)
		}
		resp.Body.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream := func() *http.Response {
		req, _ := http.NewRequestWithContext(ctx, "GET", a.url("/events"), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	first := stream()
	defer first.Body.Close()
	if first.StatusCode != 200 {
		t.Fatalf("first stream: %d", first.StatusCode)
	}
	second := stream()
	body, _ := io.ReadAll(io.LimitReader(second.Body, 4096))
	second.Body.Close()
	if second.StatusCode != 503 || !strings.Contains(string(body), "max_event_streams") {
		t.Fatalf("second stream with max_event_streams = 1: %d %s", second.StatusCode, body)
	}
}
