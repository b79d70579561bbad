package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "serialbox.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const goodConfig = `
listen = ":4100"
data_dir = "./data"
allow = ["10.0.0.0/8", "192.168.0.0/16"]
[[products]]
id = "01H4R15D3478JD26YDYK408XE6"
name = "Demo Widget"
model = "Demo-01"
[[stations]]
id = "line1-jig1"
product = "01H4R15D3478JD26YDYK408XE6"
auto_batch = true
token = ""
[stations.printer]
transport = "file"
`

func TestDemoConfigIsValid(t *testing.T) {
	c, err := loadConfig("", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Listen != ":4100" || c.DataDir != "./data" || len(c.Stations) != 1 || c.Stations[0].ID != "demo" ||
		!c.Stations[0].AutoBatch || c.Products[0].ID != DemoProductID || c.Stations[0].Printer.Transport != "file" {
		t.Fatalf("demo config = %+v", c)
	}
}

func TestConfigFileEnvironmentAndDefaults(t *testing.T) {
	env := map[string]string{"SERIALBOX_DATA_DIR": "/var/lib/serialbox"}
	c, err := loadConfig(writeConfig(t, goodConfig), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/var/lib/serialbox" || c.Listen != ":4100" || len(c.Allow) != 2 || c.Stations[0].Printer.Language != "zpl" || c.Stations[0].Printer.DPI != 203 {
		t.Fatalf("config = %+v", c)
	}
}

// A bad configuration is refused with the key that is wrong.
func TestConfigErrorsNameTheKey(t *testing.T) {
	const product = `product = "01H4R15D3478JD26YDYK408XE6"`
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"unknown key", `listen = ":4100"`, "listen = \":4100\"\nlisten_addr = \"x\"", "unknown key listen_addr"},
		{"unknown nested key", `transport = "file"`, "transport = \"file\"\nspeed = 3", "unknown key stations.printer.speed"},
		{"syntax", `listen = ":4100"`, `listen = ":4100`, "line 2"},
		{"bad listen", `listen = ":4100"`, `listen = "4100"`, "listen:"},
		{"bad allow", `"192.168.0.0/16"`, `"banana"`, "allow[1]"},
		{"product without id", "[[products]]\nid = \"01H4R15D3478JD26YDYK408XE6\"", "[[products]]", "products[0].id: required"},
		{"product without name", `name = "Demo Widget"`, ``, "products[0].name: required"},
		{"station unknown product", product, `product = "NOPE"`, `stations[0].product: unknown product "NOPE"`},
		{"station without id", `id = "line1-jig1"`, ``, "stations[0].id: required"},
		{"printer transport", `transport = "file"`, `transport = "carrier-pigeon"`, "stations[0].printer.transport"},
		{"printer language", `transport = "file"`, "transport = \"file\"\nlanguage = \"epl\"", "stations[0].printer.language"},
		{"printer template", `transport = "file"`, "transport = \"file\"\ntemplate = \"fancy\"", "stations[0].printer.template"},
		{"product template", `model = "Demo-01"`, "model = \"Demo-01\"\ntemplate = \"fancy\"", "products[0].template"},
		{"batch size", `auto_batch = true`, "auto_batch = true\nbatch_size = -5", "stations[0].batch_size"},
		{"wrong type", `auto_batch = true`, `auto_batch = "yes"`, "auto_batch"},
		{"short admin password", `listen = ":4100"`, "listen = \":4100\"\nadmin_password = \"admin\"", "admin_password: the password is too short"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(goodConfig, tc.old) {
				t.Fatalf("%q is not in the config", tc.old)
			}
			text := strings.Replace(goodConfig, tc.old, tc.new, 1)
			c, err := loadConfig(writeConfig(t, text), func(string) string { return "" })
			if err == nil {
				err = c.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v; want it to name %q", err, tc.want)
			}
		})
	}
}

func TestConfigTemplatesArePickedAndChecked(t *testing.T) {
	text := goodConfig + `
[templates.claim]
width = 50
height = 30
dpi = 203
payload = "https://manager.example.com/claim?id={{.UCI}}"
fields = [{kind = "qr", x = 2, y = 2, magnification = 4}, {kind = "uci", x = 2, y = 24, height = 3}]
`
	text = strings.Replace(text, `model = "Demo-01"`, "model = \"Demo-01\"\ntemplate = \"claim\"", 1)
	c, err := loadConfig(writeConfig(t, text), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	tmpl, err := newLabels(&c).template("device", DemoProductID, c.Stations[0].Printer)
	if err != nil || !strings.Contains(tmpl.Payload, "claim?id=") {
		t.Fatalf("template = %+v, %v", tmpl, err)
	}

	// A template that names a field that does not exist is refused at load.
	bad := strings.Replace(text, "{{.UCI}}", "{{.Serial}}", 1)
	c, err = loadConfig(writeConfig(t, bad), func(string) string { return "" })
	if err == nil {
		err = c.Validate()
	}
	if err == nil || !strings.Contains(err.Error(), "templates") {
		t.Fatalf("template naming a missing field: %v", err)
	}
}
