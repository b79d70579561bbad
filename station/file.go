package station

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FileSpool writes each job into a folder as <Name>.<language> (zpl, tspl, pdf),
// with <Name>.png beside it when the job has a preview: the demo printer, and
// "print to a shared folder". Files appear whole: each is written to a hidden
// temporary file, synced and renamed. An existing file is never replaced; the new
// one is named <Name>-2, <Name>-3 and so on.
type FileSpool struct {
	dir string
	ext string
	mu  sync.Mutex
}

// NewFileSpool returns a spool writing into dir, naming files for language.
func NewFileSpool(dir, language string) *FileSpool {
	return &FileSpool{dir: dir, ext: language}
}

// Send writes the job's files. Nothing is left behind when it fails before the
// label file is in place, so the job can be sent again.
func (f *FileSpool) Send(ctx context.Context, job Job) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return unreachable(err)
	}
	if fi, err := os.Stat(f.dir); err != nil {
		return unreachable(fmt.Errorf("spool folder: %w", err))
	} else if !fi.IsDir() {
		return unreachable(fmt.Errorf("spool folder %s is not a folder", f.dir))
	}
	base := f.freeName(fileName(job), job.Preview != nil)
	label := filepath.Join(f.dir, base+"."+f.ext)
	if job.Preview != nil {
		if err := writeAtomic(f.dir, base+".png", job.Preview); err != nil {
			return unreachable(err)
		}
	}
	if err := writeAtomic(f.dir, base+"."+f.ext, job.Data); err != nil {
		if job.Preview != nil {
			os.Remove(filepath.Join(f.dir, base+".png"))
		}
		return unreachable(err)
	}
	// The label file is in place; only its directory entry may not be on disk yet.
	if err := syncDir(f.dir); err != nil {
		return &SendError{Kind: ErrUncertain, Written: len(job.Data), Total: len(job.Data),
			Err: fmt.Errorf("%s written but the folder could not be synced: %w", label, err)}
	}
	return nil
}

// Status reports whether the spool folder takes files.
func (f *FileSpool) Status(context.Context) (Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if err := checkWritable(f.dir); err != nil {
		return Status{State: StateOffline, Message: fmt.Sprintf("Spool folder not writable: %v", err), CheckedAt: now}, err
	}
	return Status{State: StateReady, Message: "Ready: writing labels to " + f.dir, CheckedAt: now}, nil
}

// Close does nothing.
func (f *FileSpool) Close() error { return nil }

// probe creates the spool folder if needed and checks that it takes files.
func (f *FileSpool) probe(context.Context) error {
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		return unreachable(fmt.Errorf("printer.dir: %w", err))
	}
	if err := checkWritable(f.dir); err != nil {
		return unreachable(fmt.Errorf("printer.dir: %w", err))
	}
	return nil
}

// freeName returns base, or base-2, base-3, ... if files of that name exist.
func (f *FileSpool) freeName(base string, preview bool) string {
	exists := func(name string) bool {
		_, err := os.Lstat(filepath.Join(f.dir, name))
		return !errors.Is(err, fs.ErrNotExist)
	}
	for i := 1; ; i++ {
		name := base
		if i > 1 {
			name = base + "-" + strconv.Itoa(i)
		}
		if !exists(name+"."+f.ext) && (!preview || !exists(name+".png")) {
			return name
		}
	}
}

// fileName makes a safe file name from the job's name: letters, digits, dot, dash
// and underscore; anything else becomes an underscore. Unnamed jobs are job-<id>.
func fileName(job Job) string {
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, job.Name)
	name = strings.TrimLeft(name, ".")
	if name == "" {
		name = "job-" + strconv.FormatInt(job.ID, 10)
	}
	return name
}

// writeAtomic writes data to dir/name through a synced temporary file and a rename.
func writeAtomic(dir, name string, data []byte) (err error) {
	tmp, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, name))
}

// syncDir makes a folder's entries durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// checkWritable creates and removes a temporary file in dir.
func checkWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

// None is the transport for stations whose labels are rendered and recorded but
// not sent, e.g. runs on pre-printed labels.
type None struct{}

// Send does nothing and succeeds.
func (None) Send(context.Context, Job) error { return nil }

// Status always reports ready.
func (None) Status(context.Context) (Status, error) {
	return Status{State: StateReady, Message: "Labels are not sent to a printer (transport none)", CheckedAt: time.Now()}, nil
}

// Close does nothing.
func (None) Close() error { return nil }
