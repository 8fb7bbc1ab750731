package web

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

// htmlSinks are the DOM calls that parse a string as HTML. The storefront renders every server
// value as text (tests/browser/storefront.test.mjs proves it with hostile sale names); none of
// its scripts may reach for one of these, even for a fixed string.
var htmlSinks = regexp.MustCompile(`\.(innerHTML|outerHTML|insertAdjacentHTML|createContextualFragment|parseFromString|write|writeln)\b|\bsrcdoc\b`)

func TestStorefrontParsesNothingAsHTML(t *testing.T) {
	t.Parallel()
	scripts := 0
	err := fs.WalkDir(Files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".js") && !strings.HasSuffix(path, ".html") {
			return err
		}
		scripts++
		raw, err := fs.ReadFile(Files, path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(raw), "\n") {
			if m := htmlSinks.FindString(line); m != "" {
				t.Errorf("%s:%d uses %s: build elements and set text instead", path, i+1, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if scripts < 2 {
		t.Fatalf("found %d scripts and pages; the walk looked in the wrong place", scripts)
	}
}
