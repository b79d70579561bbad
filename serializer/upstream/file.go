package upstream

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
)

// fileTarget writes each chunk as a manifest file into a folder (a USB stick, a
// shared drive) for factories without a way to the cloud.
//
// Each chunk becomes its own file, batch-<batch>-<target>-<key>.<format>, written to a
// temporary name, synced and renamed into place. A chunk pushed again under the same
// key replaces its file with identical content, so no device is listed twice; a
// reader never sees a half-written file under the final name.
type fileTarget struct {
	cfg TargetConfig
}

func newFileTarget(cfg TargetConfig) (*fileTarget, error) {
	return &fileTarget{cfg: cfg}, nil
}

func (t *fileTarget) Name() string   { return t.cfg.Name }
func (t *fileTarget) ChunkSize() int { return t.cfg.ChunkSize }

// Push writes the chunk's manifest file. The folder must exist: when it is missing (a
// drive not mounted) the push is retried instead of filling the appliance's own disk.
func (t *fileTarget) Push(ctx context.Context, c Chunk) ([]Result, error) {
	if len(c.Devices) == 0 {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, retryable(0, "write manifest: %w", err)
	}
	fi, err := os.Stat(t.cfg.Dir)
	switch {
	case err != nil:
		return nil, retryable(0, "manifest folder %s is not there (is the drive mounted?): %w", t.cfg.Dir, err)
	case !fi.IsDir():
		return nil, retryable(0, "manifest folder %s is not a folder", t.cfg.Dir)
	}
	name := filepath.Join(t.cfg.Dir, ChunkFileName(c, t.cfg.Name, t.cfg.Format))
	if err := writeManifestFile(name, c, t.cfg.Format); err != nil {
		return nil, retryable(0, "write manifest %s: %w", name, err)
	}
	return everyDevice(c, StatusOK, ""), nil
}

// ChunkFileName returns the file name a file target gives a chunk:
// batch-<batch>-<target>-<key>.<format>. A key that is not a plain file name part is
// replaced by its SHA-256 prefix.
func ChunkFileName(c Chunk, target, format string) string {
	batch := c.Batch.ID
	if batch == 0 && len(c.Devices) > 0 {
		batch = c.Devices[0].BatchID
	}
	return fmt.Sprintf("batch-%d-%s-%s.%s", batch, target, fileKey(c.Key), format)
}

func fileKey(key string) string {
	ok := key != "" && len(key) <= 64
	for _, c := range []byte(key) {
		if !(c == '-' || c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			ok = false
			break
		}
	}
	if ok {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}

// writeManifestFile writes the chunk to name atomically: temporary file, fsync,
// rename, fsync of the folder.
func writeManifestFile(name string, c Chunk, format string) (err error) {
	dir := filepath.Dir(name)
	f, err := os.CreateTemp(dir, "."+filepath.Base(name)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	mw, err := NewManifestWriter(f, format)
	if err != nil {
		return err
	}
	for _, d := range c.Devices {
		if err := mw.Write(d, c.Product); err != nil {
			return err
		}
	}
	if err := mw.Flush(); err != nil {
		return err
	}
	// Claim IDs let whoever holds them claim the devices: readable by owner and group.
	if err := f.Chmod(0o640); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), name); err != nil {
		return err
	}
	syncDir(dir)
	return nil
}

// syncDir makes a rename in dir durable. Some file systems of removable drives cannot
// sync a folder; the file's own data is synced already, so a failure is ignored.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
