package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Identity is the device's own hardware identity, sent with the request so that
// asking again on the same device returns the same UCI.
type Identity struct {
	Field  string // the device object field it goes in: hwid, serial or mac
	Value  string
	Source string // where it was read, for --print-identity
}

// findIdentity returns the first identity of the device found under root ("/" on
// the device itself), in this order: the value given (flag or environment), the DMI
// product UUID, the DMI product serial, the device-tree serial number, the Raspberry
// Pi CPU serial, the MAC address of the first physical network interface, and
// /etc/machine-id. ok is false when the device has none of them.
func findIdentity(root, given, givenSource string) (id Identity, ok bool) {
	if v := strings.TrimSpace(given); v != "" {
		return Identity{Field: "hwid", Value: v, Source: givenSource}, true
	}
	for _, src := range []struct {
		field, path string
		read        func(root, path string) string
	}{
		{"hwid", "sys/class/dmi/id/product_uuid", readDMI},
		{"serial", "sys/class/dmi/id/product_serial", readDMI},
		{"serial", "proc/device-tree/serial-number", readDMI},
		{"serial", "proc/cpuinfo", readCPUSerial},
		{"mac", "sys/class/net", readFirstMAC},
		{"hwid", "etc/machine-id", readMachineID},
	} {
		if v := src.read(root, src.path); v != "" {
			return Identity{Field: src.field, Value: v, Source: "/" + src.path}, true
		}
	}
	return Identity{}, false
}

// placeholders are the values that boards ship in their DMI and device-tree fields
// when the maker filled in nothing: shared by every unit, so no identity at all.
var placeholders = []string{
	"", "none", "n/a", "na", "not specified", "not settable", "not applicable", "not available",
	"default string", "to be filled by o.e.m.", "to be filled by oem", "o.e.m.", "oem",
	"system serial number", "system product name", "chassis serial number", "invalid",
	"0123456789", "123456789", "1234567890", "xxxxxxxxxx", "serial",
	"03000200-0400-0500-0006-000700080009", // a common firmware default UUID
}

// usable reports whether v can tell one unit from another: not a known placeholder,
// not one digit repeated (00000000-0000-…, FFFF…).
func usable(v string) bool {
	l := strings.ToLower(v)
	if slices.Contains(placeholders, l) {
		return false
	}
	digits := strings.NewReplacer("-", "", ":", "", " ", "").Replace(l)
	return digits != "" && strings.Trim(digits, digits[:1]) != ""
}

// readDMI reads a one-line firmware field (DMI or device tree, which ends in NUL);
// a field that is missing, unreadable (product_uuid needs root) or a placeholder is "".
func readDMI(root, path string) string {
	b, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		return ""
	}
	v := strings.TrimSpace(string(bytes.TrimRight(b, "\x00")))
	if !usable(v) {
		return ""
	}
	if strings.HasSuffix(path, "product_uuid") {
		v = strings.ToLower(v)
	}
	return v
}

// readCPUSerial reads the "Serial" line of /proc/cpuinfo that Raspberry Pi and other
// ARM boards carry.
func readCPUSerial(root, path string) string {
	f, err := os.Open(filepath.Join(root, path))
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, found := strings.Cut(sc.Text(), ":")
		if found && strings.TrimSpace(name) == "Serial" {
			if v := strings.TrimSpace(value); usable(v) {
				return v
			}
			return ""
		}
	}
	return ""
}

// readFirstMAC returns the MAC address of the physical network interface with the
// lowest index. Virtual interfaces (lo, bridges, veth, tun) have no device link, and
// addresses the kernel drew at random change at every boot: both are skipped.
func readFirstMAC(root, path string) string {
	dir := filepath.Join(root, path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	type nic struct {
		index int
		mac   string
	}
	var nics []nic
	for _, e := range entries {
		ifc := filepath.Join(dir, e.Name())
		if _, err := os.Lstat(filepath.Join(ifc, "device")); err != nil {
			continue
		}
		if t, err := os.ReadFile(filepath.Join(ifc, "addr_assign_type")); err == nil && strings.TrimSpace(string(t)) == "1" {
			continue // NET_ADDR_RANDOM
		}
		raw, err := os.ReadFile(filepath.Join(ifc, "address"))
		if err != nil {
			continue
		}
		hw, err := net.ParseMAC(strings.TrimSpace(string(raw)))
		if err != nil || len(hw) != 6 || !usable(hw.String()) {
			continue
		}
		index := 1 << 30
		if b, err := os.ReadFile(filepath.Join(ifc, "ifindex")); err == nil {
			if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				index = n
			}
		}
		nics = append(nics, nic{index, hw.String()})
	}
	if len(nics) == 0 {
		return ""
	}
	slices.SortFunc(nics, func(a, b nic) int { return a.index - b.index })
	return nics[0].mac
}

// readMachineID reads the systemd machine id. Units flashed from one image share it
// unless the image leaves it empty for the first boot, which is why it comes last.
func readMachineID(root, path string) string {
	b, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		return ""
	}
	v := strings.TrimSpace(string(b))
	if len(v) != 32 || !usable(v) || v == "uninitialized" {
		return ""
	}
	return v
}

// describeIdentity is what --print-identity prints.
func describeIdentity(id Identity, ok bool) (string, error) {
	if !ok {
		return "", errors.New("no identity found: no --hwid or SERIALBOX_HWID, no usable DMI, device-tree or CPU serial, no physical network interface, no /etc/machine-id")
	}
	return fmt.Sprintf("%s %s (from %s)\n", id.Field, id.Value, id.Source), nil
}
