package station

import (
	"net"

	"golang.org/x/sys/unix"
)

// unacked returns how many bytes written to c the peer has not acknowledged yet
// (SIOCOUTQ); ok is false when that cannot be told.
func unacked(c *net.TCPConn) (n int, ok bool) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, false
	}
	var qerr error
	if err := raw.Control(func(fd uintptr) { n, qerr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) }); err != nil || qerr != nil {
		return 0, false
	}
	return n, true
}
