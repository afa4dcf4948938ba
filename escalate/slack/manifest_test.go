package slack

import (
	"net/url"
	"os"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestManifests: the manifests the README tells people to paste point
// Slack at the paths culprit serves, ask for the scopes it uses, and agree
// on Socket Mode.
func TestManifests(t *testing.T) {
	type manifest struct {
		Features struct {
			SlashCommands []struct {
				Command string `yaml:"command"`
				URL     string `yaml:"url"`
			} `yaml:"slash_commands"`
		} `yaml:"features"`
		OAuth struct {
			Scopes struct {
				Bot []string `yaml:"bot"`
			} `yaml:"scopes"`
		} `yaml:"oauth_config"`
		Settings struct {
			Interactivity struct {
				Enabled    bool   `yaml:"is_enabled"`
				RequestURL string `yaml:"request_url"`
			} `yaml:"interactivity"`
			SocketMode bool `yaml:"socket_mode_enabled"`
		} `yaml:"settings"`
	}
	for _, c := range []struct {
		file   string
		socket bool
	}{{"manifest.yml", false}, {"manifest-socket.yml", true}} {
		t.Run(c.file, func(t *testing.T) {
			raw, err := os.ReadFile(c.file)
			if err != nil {
				t.Fatal(err)
			}
			var m manifest
			if err := yaml.Unmarshal(raw, &m); err != nil {
				t.Fatal(err)
			}
			if len(m.Features.SlashCommands) != 1 || m.Features.SlashCommands[0].Command != "/correlate" {
				t.Fatalf("slash commands %+v, want /correlate", m.Features.SlashCommands)
			}
			for _, s := range []string{"commands", "chat:write", "channels:history", "groups:history"} {
				if !slices.Contains(m.OAuth.Scopes.Bot, s) {
					t.Errorf("bot scopes %v lack %s", m.OAuth.Scopes.Bot, s)
				}
			}
			if m.Settings.SocketMode != c.socket || !m.Settings.Interactivity.Enabled {
				t.Errorf("socket mode %v, interactivity %v", m.Settings.SocketMode, m.Settings.Interactivity.Enabled)
			}
			paths := map[string]string{"command": m.Features.SlashCommands[0].URL, "interactions": m.Settings.Interactivity.RequestURL}
			want := map[string]string{"command": "/slack/commands", "interactions": "/slack/interactions"}
			for k, raw := range paths {
				if c.socket {
					if raw != "" {
						t.Errorf("socket mode manifest has a %s URL %q", k, raw)
					}
					continue
				}
				u, err := url.Parse(raw)
				if err != nil || u.Scheme != "https" || u.Path != want[k] {
					t.Errorf("%s URL %q, want https://…%s", k, raw, want[k])
				}
			}
		})
	}
}
