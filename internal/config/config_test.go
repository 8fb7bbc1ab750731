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
	if err == nil || !strings.Contains(err.Error(), "JWT_SECRET") || !strings.Contains(err.Error(), "ADMIN_PASSWORD") {
		t.Fatalf("production with dev secrets: %v", err)
	}
	c.JWTSecret = strings.Repeat("s", 48)
	c.AdminPassword = "a-real-admin-password"
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
		"bcrypt cost out of range":      func(c *Config) { c.BcryptCost = 40 },
		"unknown environment":           func(c *Config) { c.AppEnv = "staging-ish" },
		"admin without a real password": func(c *Config) { c.AdminPassword = "short" },
	} {
		c := Defaults()
		mutate(&c)
		if c.Validate() == nil {
			t.Errorf("%s: accepted", name)
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
