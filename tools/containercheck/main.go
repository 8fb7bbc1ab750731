// Command containercheck validates the container files without a Docker engine: the compose files
// as Docker Compose loads them (compose-go: the Compose Specification schema, interpolation,
// references between services), and the Dockerfiles as BuildKit parses and lints them (the
// checks of `docker build --check`), plus this project's rules for its image: a non-root user
// and a health check in the final stage.
//
//	cd tools/containercheck && go run . -root ../..
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	digest "github.com/opencontainers/go-digest"
)

func main() {
	root := flag.String("root", ".", "repository root")
	flag.Parse()
	ctx := context.Background()
	var errs []error
	// What `docker compose` (without and with the scale profile) and the dev container load,
	// with the variables of .env.example (what a user copies to .env).
	for _, c := range []struct {
		files    []string
		profiles []string
	}{
		{files: []string{"docker-compose.yml"}},
		{files: []string{"docker-compose.yml"}, profiles: []string{"scale"}},
		{files: []string{"docker-compose.yml", ".devcontainer/compose.yml"}},
	} {
		if err := checkCompose(ctx, *root, c.files, c.profiles); err != nil {
			errs = append(errs, err)
		}
	}
	for _, df := range []struct {
		path string
		mine bool // this project's image: non-root, health check
	}{{"Dockerfile", true}, {".devcontainer/Dockerfile", false}} {
		if err := checkDockerfile(ctx, filepath.Join(*root, df.path), df.mine); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func checkCompose(ctx context.Context, root string, files, profiles []string) error {
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = filepath.Join(root, f)
	}
	opts, err := cli.NewProjectOptions(paths,
		cli.WithWorkingDirectory(root),
		cli.WithEnvFiles(filepath.Join(root, ".env.example")),
		cli.WithDotEnv,
		cli.WithName("flashsale"),
		cli.WithProfiles(profiles),
	)
	if err != nil {
		return fmt.Errorf("compose %v: %w", files, err)
	}
	p, err := opts.LoadProject(ctx)
	if err != nil {
		return fmt.Errorf("compose %v: %w", files, err)
	}
	what := strings.Join(files, " + ")
	if len(profiles) > 0 {
		what += " (profiles " + strings.Join(profiles, ", ") + ")"
	}
	fmt.Printf("compose %s: valid, services %s\n", what, strings.Join(p.ServiceNames(), " "))
	return nil
}

func checkDockerfile(ctx context.Context, path string, mine bool) error {
	dt, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	sm := llb.NewSourceMap(nil, path, "Dockerfile", dt)
	sm.Definition = &llb.Definition{} // the lint records its sources; there is no build graph here
	res, err := dockerfile2llb.DockerfileLint(ctx, dt, dockerfile2llb.ConvertOpt{MetaResolver: offlineResolver{}, SourceMap: sm})
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var problems []string
	if res.Error != nil {
		problems = append(problems, "build error: "+res.Error.Message)
	}
	for _, w := range res.Warnings {
		line := 0
		if w.Location != nil && len(w.Location.Ranges) > 0 {
			line = int(w.Location.Ranges[0].Start.Line)
		}
		problems = append(problems, fmt.Sprintf("line %d: %s: %s", line, w.RuleName, w.Detail))
	}
	if mine {
		problems = append(problems, imageRules(dt)...)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s:\n  %s", path, strings.Join(problems, "\n  "))
	}
	fmt.Printf("%s: BuildKit lint clean\n", path)
	return nil
}

// imageRules are this project's rules for its runtime image (the last stage).
func imageRules(dt []byte) []string {
	ast, err := parser.Parse(bytes.NewReader(dt))
	if err != nil {
		return []string{err.Error()}
	}
	stages, _, err := instructions.Parse(ast.AST, nil)
	if err != nil || len(stages) == 0 {
		return []string{fmt.Sprintf("no stages: %v", err)}
	}
	last := stages[len(stages)-1]
	var user string
	var health bool
	for _, c := range last.Commands {
		switch c := c.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.HealthCheckCommand:
			health = c.Health != nil && len(c.Health.Test) > 0 && c.Health.Test[0] != "NONE"
		}
	}
	var problems []string
	if user == "" || user == "root" || user == "0" || strings.HasPrefix(user, "root:") || strings.HasPrefix(user, "0:") {
		problems = append(problems, "the runtime stage must run as a non-root USER")
	}
	if !health {
		problems = append(problems, "the runtime stage must have a HEALTHCHECK")
	}
	return problems
}

// offlineResolver answers base-image lookups with an empty image config: the lint needs no
// registry (and none is reachable here).
type offlineResolver struct{}

func (offlineResolver) ResolveImageConfig(_ context.Context, ref string, _ sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	return ref, digest.FromString(ref), []byte(`{"os":"linux","architecture":"amd64","config":{}}`), nil
}
