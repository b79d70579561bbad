//go:build !unix

package store

import "errors"

func volumeFree(string) (uint64, error) {
	return 0, errors.New("free disk space is not known on this system")
}
