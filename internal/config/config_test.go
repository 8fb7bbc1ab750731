package config

import (
	"strings"
	"testing"
)

func TestDefaultsAreAWorkingDevelopmentSetup(t *testing.T) {
	c := Defaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults must validate: %v", err)
	}
	if c.DBMaxConns != 20 || c.HTTPAddr != ":8080" || c.AccessTokenTTL.Minutes() != 15 || c.OrderAttempts != 3 {
		t.Fatalf("unexpected defaults: %+v", c)
	}
	if c.JWTSecret != DevJWTSecret || c.AdminPassword != DevAdminPassword {
		t.Fatal("the dev constants must match the envDefault tags, or production would not recognise them")
	}
}

func TestProductionRefusesDevSecrets(t *testing.T) {
	c := Defaults()
	c.AppEnv = "production"
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "JWT_SECRET") || !strings.Contains(err.Error(), "ADMIN_PASSWORD") ||
		!strings.Contains(err.Error(), "REDIS_DURABILITY") {
		t.Fatalf("production with dev secrets and a Redis without persistence: %v", err)
	}
	c.JWTSecret = strings.Repeat("s", 48)
	c.AdminPassword = "a-real-admin-password"
	c.RedisDurability = DurabilityAOF
	if err := c.Validate(); err != nil {
		t.Fatalf("production with real secrets: %v", err)
	}
}

func TestValidateRejectsImpossibleSettings(t *testing.T) {
	for name, mutate := range map[string]func(*Config){
		"short secret":                  func(c *Config) { c.JWTSecret = "short" },
		"no pool":                       func(c *Config) { c.DBMaxConns = 0 },
		"workers beyond the pool":       func(c *Config) { c.WorkerConcurrency = 21 },
		"no attempts":                   func(c *Config) { c.OrderAttempts = 0 },
		"no dispatch workers":           func(c *Config) { c.DispatchWorkers = 0 },
		"no dispatch attempts":          func(c *Config) { c.DispatchAttempts = 0 },
		"negative dispatch buffer":      func(c *Config) { c.DispatchBuffer = -1 },
		"bcrypt cost out of range":      func(c *Config) { c.BcryptCost = 40 },
		"unknown environment":           func(c *Config) { c.AppEnv = "staging-ish" },
		"admin without a real password": func(c *Config) { c.AdminPassword = "short" },
		"relay never unhealthy":         func(c *Config) { c.RelayUnhealthyAfter = 0 },
		"unknown query exec mode":       func(c *Config) { c.DBQueryExecMode = "prepare" },
		"query types guessed (exec)":    func(c *Config) { c.DBQueryExecMode = "exec" },
		"simple protocol":               func(c *Config) { c.DBQueryExecMode = "simple_protocol" },
	} {
		c := Defaults()
		mutate(&c)
		if c.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestMigrationsGoWhereDatabaseMigrateURLSays(t *testing.T) {
	c := Defaults()
	if c.MigrateURL() != c.DatabaseURL {
		t.Fatalf("without DATABASE_MIGRATE_URL: %q, want DATABASE_URL %q", c.MigrateURL(), c.DatabaseURL)
	}
	c.DatabaseURL = "postgres://app@pgbouncer:6432/flashsale"
	c.DatabaseMigrateURL = "postgres://app@postgres:5432/flashsale"
	if c.MigrateURL() != c.DatabaseMigrateURL {
		t.Fatalf("with DATABASE_MIGRATE_URL: %q", c.MigrateURL())
	}
	for _, mode := range QueryExecModes {
		c.DBQueryExecMode = mode
		if err := c.Validate(); err != nil {
			t.Errorf("DB_QUERY_EXEC_MODE=%s: %v", mode, err)
		}
	}
}

func TestVarsListEveryVariable(t *testing.T) {
	vars := Vars()
	seen := map[string]bool{}
	for _, v := range vars {
		if v.Help == "" {
			t.Errorf("%s has no help text", v.Name)
		}
		seen[v.Name] = true
	}
	for _, name := range []string{"DATABASE_URL", "REDIS_URL", "HTTP_ADDR", "JWT_SECRET", "DB_MAX_CONNS", "ADMIN_EMAIL", "APP_ENV"} {
		if !seen[name] {
			t.Errorf("%s missing from Vars()", name)
		}
	}
}

func TestProductionRefusesWildcardOrigins(t *testing.T) {
	c := Defaults()
	c.AppEnv, c.JWTSecret, c.AdminPassword = "production", strings.Repeat("s", 48), "a-real-admin-password"
	c.RedisDurability = DurabilityReplica
	c.CORSAllowedOrigins = []string{"https://shop.example", "*"}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "wildcard") {
		t.Fatalf("production with a wildcard origin: %v", err)
	}
	c.CORSAllowedOrigins = []string{"https://shop.example"}
	if err := c.Validate(); err != nil {
		t.Fatalf("production with an explicit origin: %v", err)
	}
	if !c.SecureCookies() {
		t.Fatal("production cookies must be Secure")
	}
}

func TestTrustedProxiesAndPreviousKeysParse(t *testing.T) {
	c := Defaults()
	c.TrustedProxies = []string{"10.0.0.0/8", " 192.168.1.7/32 "}
	c.JWTPreviousKeys = "old:" + strings.Repeat("k", 32) + ", older:" + strings.Repeat("q", 40)
	p, err := c.TrustedProxyPrefixes()
	if err != nil || len(p) != 2 || p[1].String() != "192.168.1.7/32" {
		t.Fatalf("proxies: %v %v", p, err)
	}
	keys, err := c.PreviousKeys()
	if err != nil || len(keys) != 2 || keys[1].ID != "older" {
		t.Fatalf("keys: %v %v", keys, err)
	}
	c.TrustedProxies = []string{"not-a-cidr"}
	if c.Validate() == nil {
		t.Fatal("a bad CIDR must be refused")
	}
	c = Defaults()
	c.JWTPreviousKeys = "old:short"
	if c.Validate() == nil {
		t.Fatal("a short previous key must be refused")
	}
}
