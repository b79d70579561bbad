package main

import (
	"strings"
	"testing"
)

// The product and station rules are checked by the serializer; the configuration
// names the key of each one it breaks.
func TestCatalogRulesNameTheirKeys(t *testing.T) {
	const secondStation = `
[[stations]]
id = "line1-jig2"
[stations.printer]
transport = "none"
`
	for _, tc := range []struct{ name, text, want string }{
		{"product twice", strings.Replace(goodConfig, "[[stations]]", "[[products]]\nid = \"01H4R15D3478JD26YDYK408XE6\"\nname = \"Again\"\n[[stations]]", 1),
			`products[1].id: product "01H4R15D3478JD26YDYK408XE6" is configured twice`},
		{"station twice", goodConfig + strings.Replace(secondStation, "line1-jig2", "line1-jig1", 1),
			`stations[1].id: station "line1-jig1" is configured twice`},
		{"two defaults", strings.Replace(goodConfig, `token = ""`, "default = true", 1) + strings.Replace(secondStation, `id = "line1-jig2"`, "id = \"line1-jig2\"\ndefault = true", 1),
			"stations[1].default: only one station may be the default"},
		{"auto batch without product", goodConfig + strings.Replace(secondStation, `id = "line1-jig2"`, "id = \"line1-jig2\"\nauto_batch = true", 1),
			"stations[1].product: required when the station opens batches automatically"},
		{"batch size", strings.Replace(goodConfig, "auto_batch = true", "auto_batch = true\nbatch_size = 100000001", 1),
			"stations[0].batch_size: 100000001 is out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadConfig(writeConfig(t, tc.text), func(string) string { return "" })
			if err == nil {
				err = c.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v; want %q", err, tc.want)
			}
		})
	}
}
