//go:build unix

package store

import (
	"path/filepath"
	"syscall"
)

// volumeFree returns the bytes available to this process on the volume holding path.
func volumeFree(path string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(path), &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}
