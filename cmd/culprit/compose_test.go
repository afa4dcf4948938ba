package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/culprithq/culprit/rules"
)

// repoRoot is where docker-compose.yml lives, seen from this package.
const repoRoot = "../.."

// composeFile is the part of the Compose specification that
// docker-compose.yml uses. Decoding is strict, so a misspelt key (say
// "depend_on", which Compose would reject) fails here too; a key newly
// used in the file must be added here.
type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string               `yaml:"image"`
	Build       any                  `yaml:"build"` // a context path or {context, dockerfile}
	Command     []string             `yaml:"command"`
	Entrypoint  []string             `yaml:"entrypoint"`
	Environment map[string]string    `yaml:"environment"`
	Volumes     []string             `yaml:"volumes"`
	Ports       []string             `yaml:"ports"`
	DependsOn   map[string]dependsOn `yaml:"depends_on"`
	Healthcheck *struct {
		Test        []string `yaml:"test"`
		Interval    string   `yaml:"interval"`
		Timeout     string   `yaml:"timeout"`
		Retries     int      `yaml:"retries"`
		StartPeriod string   `yaml:"start_period"`
	} `yaml:"healthcheck"`
	Restart string `yaml:"restart"`
}

type dependsOn struct {
	Condition string `yaml:"condition"`
}

// composeConfig is the part of rules/compose.yml the compose file must
// agree with. The rules package validates the whole file.
type composeConfig struct {
	Sources struct {
		Elasticsearch struct {
			URLs  []string `yaml:"urls"`
			Index string   `yaml:"index"`
		} `yaml:"elasticsearch"`
	} `yaml:"sources"`
	Intake struct {
		Listen    string `yaml:"listen"`
		PublicURL string `yaml:"public_url"`
	} `yaml:"intake"`
	Kibana struct {
		URL      string `yaml:"url"`
		DataView string `yaml:"data_view"`
	} `yaml:"kibana"`
	Store struct {
		Dir string `yaml:"dir"`
	} `yaml:"store"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var c composeFile
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	if len(c.Services) == 0 {
		t.Fatal("docker-compose.yml: no services")
	}
	return c
}

// buildDir is the build context of a service, "" when it has none.
func (s composeService) buildDir(t *testing.T) (dir, dockerfile string) {
	t.Helper()
	switch b := s.Build.(type) {
	case nil:
		return "", ""
	case string:
		return b, "Dockerfile"
	case map[string]any:
		dir, _ = b["context"].(string)
		dockerfile, _ = b["dockerfile"].(string)
		if dockerfile == "" {
			dockerfile = "Dockerfile"
		}
		return dir, dockerfile
	}
	t.Fatalf("build: unexpected %T", s.Build)
	return "", ""
}

// pinnedImage accepts a tag other than latest, or a digest.
var pinnedImage = regexp.MustCompile(`^[a-z0-9.-]+(?::[0-9]+)?(?:/[a-z0-9._-]+)*(?::[A-Za-z0-9._-]+|@sha256:[0-9a-f]{64})$`)

func TestComposeFile(t *testing.T) {
	c := loadCompose(t)
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range c.Services {
			if !yield(n) {
				return
			}
		}
	})
	for _, want := range []string{"elasticsearch", "kibana", "kibana-setup", "culprit", "traffic"} {
		if _, ok := c.Services[want]; !ok {
			t.Errorf("no service %q", want)
		}
	}

	t.Run("images pinned or built", func(t *testing.T) {
		for _, n := range names {
			s := c.Services[n]
			if dir, df := s.buildDir(t); dir != "" {
				if _, err := os.Stat(filepath.Join(repoRoot, dir, df)); err != nil {
					t.Errorf("%s: build: %v", n, err)
				}
				continue
			}
			if !pinnedImage.MatchString(s.Image) || strings.HasSuffix(s.Image, ":latest") {
				t.Errorf("%s: image %q is not pinned to a version", n, s.Image)
			}
		}
	})

	t.Run("elastic versions match", func(t *testing.T) {
		versions := map[string]string{}
		for _, n := range names {
			img := c.Services[n].Image
			for _, p := range []string{"docker.elastic.co/elasticsearch/elasticsearch:", "docker.elastic.co/kibana/kibana:"} {
				if v, ok := strings.CutPrefix(img, p); ok {
					versions[n] = v
				}
			}
		}
		if versions["elasticsearch"] == "" || versions["kibana"] == "" {
			t.Fatalf("no Elastic images found: %v", versions)
		}
		for n, v := range versions {
			if v != versions["elasticsearch"] {
				t.Errorf("%s runs %s, elasticsearch %s", n, v, versions["elasticsearch"])
			}
			if !regexp.MustCompile(`^8\.[0-9]+\.[0-9]+$`).MatchString(v) {
				t.Errorf("%s: version %q is not 8.x.y", n, v)
			}
		}
	})

	t.Run("dependencies", func(t *testing.T) {
		for _, n := range names {
			for dep, d := range c.Services[n].DependsOn {
				target, ok := c.Services[dep]
				switch {
				case !ok:
					t.Errorf("%s depends on unknown service %q", n, dep)
				case d.Condition == "service_healthy" && (target.Healthcheck == nil || len(target.Healthcheck.Test) == 0):
					t.Errorf("%s waits for %s to be healthy, which has no healthcheck", n, dep)
				case d.Condition == "service_completed_successfully" && target.Restart != "no":
					t.Errorf("%s waits for %s to complete, which restarts", n, dep)
				case !slices.Contains([]string{"service_started", "service_healthy", "service_completed_successfully"}, d.Condition):
					t.Errorf("%s: depends_on %s: condition %q", n, dep, d.Condition)
				}
			}
		}
	})

	t.Run("mounts", func(t *testing.T) {
		for _, n := range names {
			for _, v := range c.Services[n].Volumes {
				src, _, ok := strings.Cut(v, ":")
				if !ok {
					t.Errorf("%s: volume %q has no target", n, v)
					continue
				}
				if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
					if _, err := os.Stat(filepath.Join(repoRoot, src)); err != nil {
						t.Errorf("%s mounts %s: %v", n, src, err)
					}
				} else if _, ok := c.Volumes[src]; !ok {
					t.Errorf("%s mounts volume %q, not declared under volumes", n, src)
				}
			}
		}
	})

	// Each culprit container's command must be a culprit subcommand whose
	// flags parse: the real flag set parses them, and a final -h stops it
	// before it does anything.
	for _, n := range names {
		s := c.Services[n]
		if dir, _ := s.buildDir(t); dir == "" {
			continue
		}
		t.Run("command of "+n, func(t *testing.T) {
			if len(s.Command) == 0 {
				t.Fatal("no command")
			}
			var stdout, stderr bytes.Buffer
			args := append(slices.Clone(s.Command), "-h")
			err := run(context.Background(), args, func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr)
			if err != nil {
				t.Fatalf("culprit %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
			}
			if !strings.Contains(stderr.String(), "Usage: culprit "+s.Command[0]) {
				t.Errorf("culprit %s did not stop at -h:\n%s", strings.Join(args, " "), stderr.String())
			}
		})
	}
}

// TestComposeAgrees checks that the compose file and culprit's compose
// configuration name the same things: ports, URLs, paths, the data view.
func TestComposeAgrees(t *testing.T) {
	c := loadCompose(t)
	b, err := os.ReadFile(filepath.Join(repoRoot, "rules", "compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg composeConfig
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("rules/compose.yml: %v", err)
	}
	culprit, traffic, setup := c.Services["culprit"], c.Services["traffic"], c.Services["kibana-setup"]

	// Every secret the configuration reads from the environment is given
	// to the culprit container, and with them the file is valid.
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		for i := 0; n.Kind == yaml.MappingNode && i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "env" && n.Content[i+1].Kind == yaml.ScalarNode {
				env[n.Content[i+1].Value] = "set-by-test, long enough for a signing key"
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&root)
	for name := range env {
		if _, ok := culprit.Environment[name]; !ok {
			t.Errorf("rules/compose.yml reads %s, which the culprit service does not set", name)
		}
	}
	if _, err := rules.LoadWith(filepath.Join(repoRoot, "rules", "compose.yml"), func(k string) string { return env[k] }); err != nil {
		t.Errorf("rules/compose.yml: %v", err)
	}
	composeServes(t, culprit)

	flagValue := func(cmd []string, name string) string {
		for i, a := range cmd {
			if (a == "--"+name || a == "-"+name) && i+1 < len(cmd) {
				return cmd[i+1]
			}
		}
		return ""
	}
	mountOf := func(s composeService, src string) string {
		for _, v := range s.Volumes {
			if p := strings.Split(v, ":"); len(p) >= 2 && p[0] == src {
				return p[1]
			}
		}
		return ""
	}

	// culprit reads the mounted configuration.
	if got, want := flagValue(culprit.Command, "config"), mountOf(culprit, "./rules/compose.yml"); got == "" || got != want {
		t.Errorf("culprit reads --config %q, rules/compose.yml is mounted at %q", got, want)
	}
	// Its store is the persistent volume.
	if got := mountOf(culprit, "culprit-data"); got == "" || got != cfg.Store.Dir {
		t.Errorf("store.dir %q, culprit-data is mounted at %q", cfg.Store.Dir, got)
	}
	// It listens where the port is published and where traffic posts.
	_, port, _ := strings.Cut(cfg.Intake.Listen, ":")
	if !slices.ContainsFunc(culprit.Ports, func(p string) bool { return strings.HasSuffix(p, ":"+port) }) {
		t.Errorf("intake.listen %q is not published: ports %v", cfg.Intake.Listen, culprit.Ports)
	}
	if u, err := url.Parse(flagValue(traffic.Command, "intake")); err != nil || u.Hostname() != "culprit" || u.Port() != port {
		t.Errorf("traffic posts to %q, culprit listens on %q", flagValue(traffic.Command, "intake"), cfg.Intake.Listen)
	}
	if culprit.Environment["CULPRIT_INTAKE_TOKEN"] == "" || culprit.Environment["CULPRIT_INTAKE_TOKEN"] != traffic.Environment["CULPRIT_INTAKE_TOKEN"] {
		t.Errorf("intake tokens differ: culprit %q, traffic %q", culprit.Environment["CULPRIT_INTAKE_TOKEN"], traffic.Environment["CULPRIT_INTAKE_TOKEN"])
	}
	// Both read and write the same Elasticsearch, in indices the
	// configured pattern and the data view match.
	es := flagValue(traffic.Command, "es")
	if !slices.Contains(cfg.Sources.Elasticsearch.URLs, es) {
		t.Errorf("traffic writes to %q, culprit reads %v", es, cfg.Sources.Elasticsearch.URLs)
	}
	if u, err := url.Parse(es); err != nil || c.Services[u.Hostname()].Image == "" {
		t.Errorf("traffic writes to %q, not a compose service", es)
	}
	prefix := flagValue(traffic.Command, "index-prefix")
	if prefix == "" {
		prefix = "logs-" // simulate's default
	}
	if ok, _ := filepath.Match(cfg.Sources.Elasticsearch.Index, prefix+"2026.11.20"); !ok {
		t.Errorf("index pattern %q does not match the simulator's %s2026.11.20", cfg.Sources.Elasticsearch.Index, prefix)
	}
	// kibana-setup creates the data view the links point to.
	body := setup.Command[len(setup.Command)-1]
	var dv struct {
		DataView struct {
			ID, Title, TimeFieldName string
		} `json:"data_view"`
	}
	if err := json.Unmarshal([]byte(body), &dv); err != nil {
		t.Fatalf("kibana-setup body %s: %v", body, err)
	}
	if dv.DataView.ID != cfg.Kibana.DataView || dv.DataView.Title != cfg.Sources.Elasticsearch.Index || dv.DataView.TimeFieldName != "@timestamp" {
		t.Errorf("kibana-setup creates %+v; the configuration links to %q over %q", dv.DataView, cfg.Kibana.DataView, cfg.Sources.Elasticsearch.Index)
	}
	if u, err := url.Parse(cfg.Kibana.URL); err != nil || !slices.ContainsFunc(c.Services["kibana"].Ports, func(p string) bool { return strings.HasSuffix(p, ":"+u.Port()) }) {
		t.Errorf("kibana.url %q is not where Kibana is published: %v", cfg.Kibana.URL, c.Services["kibana"].Ports)
	}
}

// TestDockerfile checks what the image build promises: the Go of go.mod,
// a static trimmed binary with its version, distroless and nonroot.
func TestDockerfile(t *testing.T) {
	df, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goMod := regexp.MustCompile(`(?m)^go ([0-9]+\.[0-9]+)`).FindSubmatch(mod)
	goImage := regexp.MustCompile(`(?m)^FROM golang:([0-9]+\.[0-9]+)[-.\s]`).FindSubmatch(df)
	if goMod == nil || goImage == nil || string(goMod[1]) != string(goImage[1]) {
		t.Errorf("Dockerfile builds with Go %q, go.mod says %q", goImage, goMod)
	}
	for _, want := range []string{
		"CGO_ENABLED=0", "-trimpath", "-X main.version=", "FROM gcr.io/distroless/static-debian12:nonroot",
		`ENTRYPOINT ["/culprit"]`, "VOLUME /var/lib/culprit",
	} {
		if !bytes.Contains(df, []byte(want)) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	ignore, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".git", ".es", "bin"} {
		if !slices.Contains(strings.Fields(string(ignore)), want) {
			t.Errorf(".dockerignore does not keep %s out of the build context", want)
		}
	}
}

// TestDockerComposeConfig asks Docker itself, where there is one.
func TestDockerComposeConfig(t *testing.T) {
	docker, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("no docker binary: docker compose config not run (the YAML checks above still ran)")
	}
	if err := exec.Command(docker, "compose", "version").Run(); err != nil {
		t.Skip("docker has no compose plugin: docker compose config not run")
	}
	cmd := exec.Command(docker, "compose", "-f", "docker-compose.yml", "config", "-q")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("docker compose config: %v\n%s", err, out)
	}
}

// composeServes assembles the daemon from rules/compose.yml with the
// defaults docker-compose.yml gives its secrets (${NAME:-default}), so a
// default too short to sign with stops this test rather than the demo;
// and checks that the private listener, which the demo runs without a
// login, is published on 127.0.0.1 only.
func composeServes(t *testing.T, culprit composeService) {
	t.Helper()
	defaults := map[string]string{}
	for name, v := range culprit.Environment {
		if _, d, ok := strings.Cut(v, ":-"); ok {
			defaults[name] = strings.TrimSuffix(d, "}")
		}
	}
	defaults["CULPRIT_PD_ROUTING_KEY"] = "R0123456789abcdef0123456789abcdef" // required, no default
	cfg, err := rules.LoadWith(filepath.Join(repoRoot, "rules", "compose.yml"), func(k string) string { return defaults[k] })
	if err != nil {
		t.Fatalf("rules/compose.yml with the compose defaults: %v", err)
	}
	cfg.Store.Dir = t.TempDir()
	s, err := assemble(t.Context(), &cfg, time.Now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("the demo's daemon does not start: %v", err)
	}
	s.Close()
	if cfg.UI.Insecure {
		_, port, _ := strings.Cut(cfg.UI.Listen, ":")
		published := slices.ContainsFunc(culprit.Ports, func(p string) bool { return strings.HasSuffix(p, ":"+port) })
		if !published || !slices.ContainsFunc(culprit.Ports, func(p string) bool { return p == "127.0.0.1:"+port+":"+port }) {
			t.Errorf("ui.listen %q runs without a login: publish it as 127.0.0.1:%s:%s only, not %v", cfg.UI.Listen, port, port, culprit.Ports)
		}
	}
}
