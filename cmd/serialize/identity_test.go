package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeRoot lays out files under a temporary root: path → content; a content of
// "->TARGET" makes a symbolic link.
func fakeRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for path, content := range files {
		p := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "->"); ok {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// A Raspberry Pi 4's /proc/cpuinfo ends like this.
const piCPUInfo = `processor	: 3
BogoMIPS	: 108.00
Features	: fp asimd evtstrm crc32 cpuid
CPU implementer	: 0x41

Hardware	: BCM2835
Revision	: c03111
Serial		: 10000000a3c5e1b2
Model		: Raspberry Pi 4 Model B Rev 1.1
`

func nic(name, mac, assign, index string, physical bool) map[string]string {
	m := map[string]string{
		"sys/class/net/" + name + "/address":          mac + "\n",
		"sys/class/net/" + name + "/addr_assign_type": assign + "\n",
		"sys/class/net/" + name + "/ifindex":          index + "\n",
	}
	if physical {
		m["sys/class/net/"+name+"/device"] = "->../../../devices/pci0000:00/0000:00:03.0"
	}
	return m
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func TestIdentitySources(t *testing.T) {
	machineID := map[string]string{"etc/machine-id": "3d1219c7c4c5404aaa1f6d2a48adfda4\n"}
	nics := merge(
		nic("lo", "00:00:00:00:00:00", "0", "1", false),
		nic("wlan0", "5a:3e:23:08:21:10", "1", "2", true), // random MAC of a Wi-Fi scan
		nic("eth1", "dc:a6:32:00:00:02", "0", "4", true),
		nic("eth0", "DC:A6:32:01:02:03", "0", "3", true),
		nic("docker0", "02:42:ac:11:00:01", "3", "5", false),
	)
	for _, tc := range []struct {
		name  string
		files map[string]string
		given string
		want  Identity
	}{
		{"given value wins", merge(machineID, map[string]string{"sys/class/dmi/id/product_uuid": "4C4C4544-0042-3510-8052-B4C04F4E4D32\n"}), "  JIG-UNIT-42 ",
			Identity{"hwid", "JIG-UNIT-42", "--hwid"}},
		{"DMI product UUID", merge(machineID, nics, map[string]string{"sys/class/dmi/id/product_uuid": "4C4C4544-0042-3510-8052-B4C04F4E4D32\n", "sys/class/dmi/id/product_serial": "CN1234\n"}), "",
			Identity{"hwid", "4c4c4544-0042-3510-8052-b4c04f4e4d32", "/sys/class/dmi/id/product_uuid"}},
		{"placeholder UUID skipped for the serial", merge(machineID, map[string]string{"sys/class/dmi/id/product_uuid": "03000200-0400-0500-0006-000700080009\n", "sys/class/dmi/id/product_serial": "CN1234\n"}), "",
			Identity{"serial", "CN1234", "/sys/class/dmi/id/product_serial"}},
		{"zero UUID and O.E.M. serial skipped", merge(machineID, nics, map[string]string{"sys/class/dmi/id/product_uuid": "00000000-0000-0000-0000-000000000000\n", "sys/class/dmi/id/product_serial": "To Be Filled By O.E.M.\n"}), "",
			Identity{"mac", "dc:a6:32:01:02:03", "/sys/class/net"}},
		{"device-tree serial", merge(machineID, nics, map[string]string{"proc/device-tree/serial-number": "a3c5e1b2f00d\x00", "proc/cpuinfo": piCPUInfo}), "",
			Identity{"serial", "a3c5e1b2f00d", "/proc/device-tree/serial-number"}},
		{"Raspberry Pi CPU serial", merge(machineID, nics, map[string]string{"proc/cpuinfo": piCPUInfo}), "",
			Identity{"serial", "10000000a3c5e1b2", "/proc/cpuinfo"}},
		{"x86 cpuinfo has no serial: first physical NIC", merge(machineID, nics, map[string]string{"proc/cpuinfo": "processor\t: 0\nmodel name\t: Intel\n"}), "",
			Identity{"mac", "dc:a6:32:01:02:03", "/sys/class/net"}},
		{"machine-id last", merge(machineID, nic("lo", "00:00:00:00:00:00", "0", "1", false)), "",
			Identity{"hwid", "3d1219c7c4c5404aaa1f6d2a48adfda4", "/etc/machine-id"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := findIdentity(fakeRoot(t, tc.files), tc.given, "--hwid")
			if !ok || got != tc.want {
				t.Fatalf("identity = %+v, %v; want %+v", got, ok, tc.want)
			}
		})
	}
	// Nothing usable at all: an image whose machine-id waits for the first boot.
	if got, ok := findIdentity(fakeRoot(t, map[string]string{"etc/machine-id": "uninitialized\n"}), "", ""); ok {
		t.Fatalf("empty device has identity %+v", got)
	}
}

func TestPrintIdentity(t *testing.T) {
	root := fakeRoot(t, map[string]string{"proc/cpuinfo": piCPUInfo})
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"--root", root, "--print-identity"}, env(nil), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if got := stdout.String(); got != "serial 10000000a3c5e1b2 (from /proc/cpuinfo)\n" {
		t.Fatalf("--print-identity = %q", got)
	}
	stdout.Reset()
	if code := run(context.Background(), []string{"--root", t.TempDir(), "--print-identity"}, env(nil), &stdout, &stderr); code != 1 || stdout.Len() != 0 || !strings.Contains(stderr.String(), "no identity found") {
		t.Fatalf("nothing to find: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}
