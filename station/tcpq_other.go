//go:build !linux

package station

import "net"

// unacked cannot tell outside Linux.
func unacked(*net.TCPConn) (int, bool) { return 0, false }
