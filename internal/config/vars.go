package config

import (
	"os"
	"reflect"
)

var stderr = os.Stderr

// Var documents one environment variable.
type Var struct {
	Name, Default, Help string
}

// Vars lists every variable Config reads, in declaration order, for --help and the README.
func Vars() []Var {
	t := reflect.TypeFor[Config]()
	out := make([]Var, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if name := f.Tag.Get("env"); name != "" {
			out = append(out, Var{Name: name, Default: f.Tag.Get("envDefault"), Help: f.Tag.Get("help")})
		}
	}
	return out
}
