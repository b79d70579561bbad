package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"serialbox/label"
	"serialbox/serializer"
	"serialbox/serializer/upstream"
	"serialbox/station"
	"serialbox/web"
)

// DemoProductID is the product id of the Ioto agent's sample apps, so that an
// unmodified sample agent pointed at the appliance is served.
const DemoProductID = "01H4R15D3478JD26YDYK408XE6"

// Config is the appliance's configuration: defaults, then the TOML file, then the
// environment (SERIALBOX_LISTEN, SERIALBOX_DATA_DIR, SERIALBOX_ADMIN_PASSWORD), then
// command-line flags.
type Config struct {
	Listen   string   `toml:"listen"`
	DataDir  string   `toml:"data_dir"`
	Allow    []string `toml:"allow"`     // extra source networks served besides the LAN ranges
	LogLevel string   `toml:"log_level"` // debug, info, warn or error
	// AdminPassword is the password of the supervisor "admin" created on the first
	// start with no operator at all (or SERIALBOX_ADMIN_PASSWORD); "" draws one and
	// logs it once.
	AdminPassword string          `toml:"admin_password"`
	Products      []ProductConfig `toml:"products"`
	Stations      []StationConfig `toml:"stations"`
	// Templates are named label templates ([templates.NAME]) that products and printers pick.
	Templates label.Templates `toml:"templates"`
	// Upstream are the targets closed batches are registered with ([[upstream]]).
	Upstream []upstream.TargetConfig `toml:"upstream"`
	// Backup schedules backups while serving ([backup]).
	Backup BackupConfig `toml:"backup"`
	// TLS serves the operator page and API over HTTPS as well ([tls]).
	TLS TLSConfig `toml:"tls"`
	// Replicate streams the database to a replica off the box ([replicate]).
	Replicate ReplicateConfig `toml:"replicate"`
	// MQTT publishes the line's events to the factory's broker ([mqtt]).
	MQTT MQTTConfig `toml:"mqtt"`
	// PregenMax is the most UCIs one pre-generation (API or serialbox pregen) may ask for.
	PregenMax int `toml:"pregen_max"`
	// MaxEventStreams caps the live line views (GET /events) served at once; 0 = web's default.
	MaxEventStreams int `toml:"max_event_streams"`

	// Source says where the configuration came from, for the start-up log.
	Source string `toml:"-"`
	// groupCommit comes from the --group-commit flag only (0 = the store's default).
	groupCommit int
	// path is the configuration file read again on reload ("" = the built-in demo).
	path string
}

// ProductConfig is one [[products]] entry.
type ProductConfig struct {
	ID            string `toml:"id"`
	Name          string `toml:"name"`
	Model         string `toml:"model"`
	Template      string `toml:"template"`       // device label template; "" = the built-in one
	BatchTemplate string `toml:"batch_template"` // batch (carton) label template; "" = the built-in one
	// ProvisioningSecret (base64, or "${VAR}" from the environment) gives every device a
	// provisioning token, answered to the jig and sent upstream.
	ProvisioningSecret string `toml:"provisioning_secret"`
	secret             []byte
}

// StationConfig is one [[stations]] entry.
type StationConfig struct {
	ID        string `toml:"id"`
	Name      string `toml:"name"`
	Product   string `toml:"product"`    // product made here when a request names none
	AutoBatch bool   `toml:"auto_batch"` // open a batch automatically when none is open
	BatchSize int    `toml:"batch_size"` // planned size of automatic batches; 0 = no limit
	Default   bool   `toml:"default"`    // serves requests that name no station
	Token     string `toml:"token"`      // when set, jig requests must carry it
	// RequireIdentity refuses jig requests without hwid, serial, mac or key.
	RequireIdentity bool                  `toml:"require_identity"`
	Printer         station.PrinterConfig `toml:"printer"`
}

// defaultConfig holds the values used where the file says nothing.
func defaultConfig() Config {
	return Config{Listen: ":4100", DataDir: "./data", LogLevel: "info", PregenMax: serializer.DefaultPregenMax}
}

// demoConfig is what the appliance runs with no configuration file: one demo product
// and one station whose batches open by themselves and whose printer writes label files.
func demoConfig() Config {
	c := defaultConfig()
	c.Source = "built-in demo"
	c.Products = []ProductConfig{{ID: DemoProductID, Name: "Demo Widget", Model: "Demo-01"}}
	c.Stations = []StationConfig{{
		ID: "demo", Name: "Demo station", Product: DemoProductID, AutoBatch: true,
		Printer: station.PrinterConfig{Transport: station.TransportFile},
	}}
	return c
}

// loadConfig reads the file at path ("" = the built-in demo), applies the
// environment and checks the result.
func loadConfig(path string, getenv func(string) string) (Config, error) {
	var c Config
	if path == "" {
		c = demoConfig()
	} else {
		c = defaultConfig()
		c.Source = path
		md, err := toml.DecodeFile(path, &c)
		if err != nil {
			var pe toml.ParseError
			if errors.As(err, &pe) {
				return c, fmt.Errorf("config %s: %s", path, pe.ErrorWithPosition())
			}
			return c, fmt.Errorf("config %s: %w", path, err)
		}
		if undecoded := md.Undecoded(); len(undecoded) > 0 {
			keys := make([]string, len(undecoded))
			for i, k := range undecoded {
				keys[i] = k.String()
			}
			return c, fmt.Errorf("config %s: unknown key %s", path, strings.Join(keys, ", "))
		}
	}
	for i := range c.Products {
		p := &c.Products[i]
		if v, ok := strings.CutPrefix(p.ProvisioningSecret, "${"); ok && strings.HasSuffix(v, "}") {
			name := strings.TrimSuffix(v, "}")
			if p.ProvisioningSecret = getenv(name); p.ProvisioningSecret == "" {
				return c, fmt.Errorf("config %s: products[%d].provisioning_secret: environment variable %s is not set", c.Source, i, name)
			}
		}
	}
	for i := range c.Upstream {
		if err := c.Upstream[i].ExpandEnv(getenv); err != nil {
			return c, fmt.Errorf("config %s: upstream[%d].%s", c.Source, i, strings.TrimPrefix(err.Error(), "upstream."))
		}
	}
	if err := c.Replicate.expandEnv(getenv); err != nil {
		return c, fmt.Errorf("config %s: %w", c.Source, err)
	}
	if err := c.MQTT.expandEnv(getenv); err != nil {
		return c, fmt.Errorf("config %s: %w", c.Source, err)
	}
	if v := getenv("SERIALBOX_LISTEN"); v != "" {
		c.Listen = v
	}
	if v := getenv("SERIALBOX_DATA_DIR"); v != "" {
		c.DataDir = v
	}
	if v := getenv("SERIALBOX_ADMIN_PASSWORD"); v != "" {
		c.AdminPassword = v
	}
	return c, nil
}

// Validate checks every key and the keys' relations, and names the first bad key.
// It fills in printer defaults.
func (c *Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen: %q is not host:port (e.g. \":4100\")", c.Listen)
	}
	if c.TLS.Listen != "" {
		if _, _, err := net.SplitHostPort(c.TLS.Listen); err != nil {
			return fmt.Errorf("tls.listen: %q is not host:port (e.g. \":4443\")", c.TLS.Listen)
		}
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		return errors.New("tls.cert and tls.key: give both, or neither for a self-signed certificate")
	}
	if strings.TrimSpace(c.DataDir) == "" {
		return errors.New("data_dir: must not be empty")
	}
	for i, a := range c.Allow {
		if _, err := web.ParseAllow([]string{a}); err != nil {
			return fmt.Errorf("allow[%d]: %v", i, err)
		}
	}
	if c.AdminPassword != "" {
		if err := serializer.ValidatePassword(c.AdminPassword); err != nil {
			return fmt.Errorf("admin_password: %s", serializer.ErrorMessage(err))
		}
	}
	if c.PregenMax < 0 || c.PregenMax > serializer.MaxBatchSize {
		return fmt.Errorf("pregen_max: %d is out of range (1 to %d)", c.PregenMax, serializer.MaxBatchSize)
	}
	if c.MaxEventStreams < 0 {
		return fmt.Errorf("max_event_streams: %d is negative (0 for the default, %d)", c.MaxEventStreams, web.DefaultMaxEventStreams)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.LogLevel) {
		return fmt.Errorf("log_level: %q is not debug, info, warn or error", c.LogLevel)
	}
	if len(c.Products) == 0 {
		return errors.New("products: at least one [[products]] entry is needed")
	}
	if len(c.Stations) == 0 {
		return errors.New("stations: at least one [[stations]] entry is needed")
	}
	if err := c.Templates.Validate(); err != nil {
		return fmt.Errorf("templates: %s", serializer.ErrorMessage(err))
	}
	// The rules of the domain (ids, a station's product, batch sizes, the default
	// station) are the serializer's; here they only get their keys.
	if err := c.Catalog().Validate(); err != nil {
		return catalogKeyError(err)
	}
	for i, p := range c.Products {
		key := fmt.Sprintf("products[%d]", i)
		switch {
		case !validID(p.ID):
			return fmt.Errorf("%s.id: %q may use only letters, digits, '-', '_' and '.'", key, p.ID)
		case strings.TrimSpace(p.Name) == "":
			return fmt.Errorf("%s.name: required (product %q)", key, p.ID)
		case p.Template != "" && !c.hasTemplate(p.Template):
			return fmt.Errorf("%s.template: no template %q in [templates]", key, p.Template)
		case p.BatchTemplate != "" && !c.hasTemplate(p.BatchTemplate):
			return fmt.Errorf("%s.batch_template: no template %q in [templates]", key, p.BatchTemplate)
		}
		if p.ProvisioningSecret != "" {
			secret, err := serializer.DecodeProvisioningSecret(p.ProvisioningSecret)
			if err != nil {
				return fmt.Errorf("%s.provisioning_secret: %s", key, serializer.ErrorMessage(err))
			}
			c.Products[i].secret = secret
		}
	}
	for i := range c.Stations {
		s := &c.Stations[i]
		key := fmt.Sprintf("stations[%d]", i)
		if !validID(s.ID) {
			return fmt.Errorf("%s.id: %q may use only letters, digits, '-', '_' and '.'", key, s.ID)
		}
		s.Printer.Defaults()
		if err := s.Printer.Validate(); err != nil {
			return fmt.Errorf("%s.%s (station %q)", key, serializer.ErrorMessage(err), s.ID)
		}
		if s.Printer.Template != "" && !c.hasTemplate(s.Printer.Template) {
			return fmt.Errorf("%s.printer.template: no template %q in [templates] (station %q)", key, s.Printer.Template, s.ID)
		}
	}
	for i := range c.Upstream {
		if err := c.Upstream[i].Validate(); err != nil {
			return fmt.Errorf("upstream[%d].%s", i, strings.TrimPrefix(err.Error(), "upstream."))
		}
	}
	if err := upstream.ValidateAll(c.Upstream); err != nil {
		return err
	}
	if c.Backup.Every == 0 {
		c.Backup.Every = station.Duration(6 * time.Hour)
	}
	if c.Backup.Keep == 0 {
		c.Backup.Keep = 14
	}
	switch {
	case time.Duration(c.Backup.Every) < time.Minute:
		return fmt.Errorf("backup.every: %v is too often (at least 1m)", time.Duration(c.Backup.Every))
	case c.Backup.Keep < 1:
		return fmt.Errorf("backup.keep: %d must be at least 1", c.Backup.Keep)
	}
	if err := c.Replicate.validate(); err != nil {
		return err
	}
	if err := c.MQTT.validate(); err != nil {
		return err
	}
	return newLabels(c).check(c)
}

// syncTargets returns the names of the upstream targets and of those that take every
// batch when it closes.
func (c *Config) syncTargets() (all, auto []string) {
	for _, u := range c.Upstream {
		all = append(all, u.Name)
		if u.Auto {
			auto = append(auto, u.Name)
		}
	}
	return all, auto
}

// catalogKeys are the configuration keys of the product and station fields whose
// rules serializer.Catalog.Validate checks.
var catalogKeys = map[string]string{"ID": "id", "ProductID": "product", "BatchSize": "batch_size", "Default": "default"}

// catalogKeyError names the configuration key of a serializer.CatalogError.
func catalogKeyError(err error) error {
	var ce *serializer.CatalogError
	if !errors.As(err, &ce) {
		return err
	}
	key, ok := catalogKeys[ce.Field]
	if !ok {
		key = strings.ToLower(ce.Field)
	}
	return fmt.Errorf("%s[%d].%s: %s", ce.List, ce.Index, key, ce.Reason)
}

func (c *Config) hasTemplate(name string) bool {
	_, ok := c.Templates[name]
	return ok
}

func validID(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// Catalog returns the configured products and stations as domain values.
func (c *Config) Catalog() serializer.Catalog {
	cat := serializer.Catalog{PregenMax: c.PregenMax}
	for _, p := range c.Products {
		cat.Products = append(cat.Products, serializer.Product{ID: p.ID, Name: p.Name, Model: p.Model, ProvisioningSecret: p.secret})
	}
	for _, s := range c.Stations {
		cat.Stations = append(cat.Stations, serializer.Station{
			ID: s.ID, Name: s.Name, ProductID: s.Product, AutoBatch: s.AutoBatch,
			BatchSize: s.BatchSize, Default: s.Default, Token: s.Token, RequireIdentity: s.RequireIdentity,
		})
	}
	return cat
}

// dataPath resolves a path from the configuration against the data folder.
func (c *Config) dataPath(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.DataDir, p)
}

// configFromEnv returns the configuration file named by SERIALBOX_CONFIG, if any.
func configFromEnv() string { return os.Getenv("SERIALBOX_CONFIG") }
