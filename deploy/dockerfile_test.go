package deploy_test

import (
	"bufio"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// instruction is one Dockerfile instruction with its continuation lines
// joined.
type instruction struct {
	line int
	cmd  string // upper case: FROM, RUN, ...
	args string
}

// stage is one build stage.
type stage struct {
	from, name string
	body       []instruction
}

// parseDockerfile splits a Dockerfile into stages. It follows the parts of
// the format the checks need: comments, parser directives, backslash
// continuations and ARG substitution in FROM.
func parseDockerfile(t *testing.T, file string) (args map[string]string, stages []*stage) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ins []instruction
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if body, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(line)
		cmd, rest, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		ins = append(ins, instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(rest)})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur.Len() > 0 {
		t.Fatalf("%s: dangling line continuation at the end", file)
	}
	args = map[string]string{}
	for _, in := range ins {
		if in.cmd == "FROM" {
			fields := strings.Fields(in.args)
			var image []string
			for i := 0; i < len(fields); i++ {
				switch {
				case strings.HasPrefix(fields[i], "--"):
				case strings.EqualFold(fields[i], "AS") && i+1 < len(fields):
					i++
				default:
					image = append(image, fields[i])
				}
			}
			if len(image) != 1 {
				t.Fatalf("%s:%d: FROM %q: want one image", file, in.line, in.args)
			}
			s := &stage{from: expandArgs(image[0], args)}
			if i := slices.IndexFunc(fields, func(f string) bool { return strings.EqualFold(f, "AS") }); i >= 0 && i+1 < len(fields) {
				s.name = fields[i+1]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				t.Fatalf("%s:%d: %s before the first FROM", file, in.line, in.cmd)
			}
			k, v, _ := strings.Cut(in.args, "=")
			args[k] = v
			continue
		}
		stages[len(stages)-1].body = append(stages[len(stages)-1].body, in)
	}
	return args, stages
}

var argRE = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`)

func expandArgs(s string, args map[string]string) string {
	return argRE.ReplaceAllStringFunc(s, func(m string) string {
		return args[argRE.FindStringSubmatch(m)[1]]
	})
}

// execForm decodes a JSON-array (exec form) CMD or ENTRYPOINT.
func execForm(t *testing.T, in instruction) []string {
	t.Helper()
	var v []string
	if err := json.Unmarshal([]byte(in.args), &v); err != nil || len(v) == 0 {
		t.Fatalf("Dockerfile:%d: %s %s is not in exec form (a JSON array): signals would go to a shell", in.line, in.cmd, in.args)
	}
	return v
}

// goDirective returns the go version of the repository's go.mod.
func goDirective(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "go "); ok {
			return v
		}
	}
	t.Fatal("../go.mod has no go directive")
	return ""
}

// TestDockerfile checks the image definition: a Go builder matching go.mod
// building ./cmd/gslb statically, a minimal non-root final stage, exec-form
// entry point running serve with the config path the Deployment mounts, and
// the ports the Deployment uses.
func TestDockerfile(t *testing.T) {
	const file = "Dockerfile"
	_, stages := parseDockerfile(t, file)
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a multi-stage build", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]

	// Builder: golang:<go.mod's major.minor>.
	img, tag, _ := strings.Cut(build.from, ":")
	goVer := goDirective(t)
	parts := strings.SplitN(goVer, ".", 3)
	if img != "golang" || len(parts) < 2 || !strings.HasPrefix(tag, parts[0]+"."+parts[1]) {
		t.Errorf("builder image %q does not match go.mod's go %s", build.from, goVer)
	}
	var built string
	for _, in := range build.body {
		if in.cmd != "RUN" || !strings.Contains(in.args, "go build") {
			continue
		}
		for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/gslb"} {
			if !strings.Contains(in.args, want) {
				t.Errorf("Dockerfile:%d: go build lacks %s", in.line, want)
			}
		}
		m := regexp.MustCompile(`-ldflags\s+"([^"]*)"`).FindStringSubmatch(in.args)
		if m == nil || !strings.Contains(m[1], "-s") || !strings.Contains(m[1], "-w") {
			t.Errorf("Dockerfile:%d: go build does not strip with -ldflags \"-s -w\"", in.line)
		}
		if o := regexp.MustCompile(`-o\s+(\S+)`).FindStringSubmatch(in.args); o != nil {
			built = o[1]
		}
	}
	if built == "" {
		t.Fatalf("no RUN ... go build -o FILE ./cmd/gslb in the builder stage")
	}

	// Final stage: distroless static or scratch, nothing to run a shell in.
	if !strings.HasPrefix(final.from, "gcr.io/distroless/static") && final.from != "scratch" {
		t.Errorf("final image %q: want gcr.io/distroless/static* or scratch for a static binary", final.from)
	}
	var user, entryBin string
	var entry, cmd []string
	exposed := map[string]bool{}
	for _, in := range final.body {
		switch in.cmd {
		case "RUN":
			t.Errorf("Dockerfile:%d: RUN in the final stage (no shell in a static image)", in.line)
		case "USER":
			user = in.args
		case "COPY":
			f := strings.Fields(in.args)
			if len(f) == 3 && f[0] == "--from="+build.name && f[1] == built {
				entryBin = f[2]
			}
		case "ENTRYPOINT":
			entry = execForm(t, in)
		case "CMD":
			cmd = execForm(t, in)
		case "EXPOSE":
			for _, p := range strings.Fields(in.args) {
				if !strings.Contains(p, "/") {
					p += "/tcp"
				}
				exposed[strings.ToLower(p)] = true
			}
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); uid == "" || uid == "root" || (err == nil && n == 0) {
		t.Errorf("final stage USER %q: want a non-root user", user)
	}
	if entryBin == "" {
		t.Errorf("final stage does not COPY --from=%s %s", build.name, built)
	}
	argv := append(append([]string{}, entry...), cmd...)
	if len(argv) < 2 || argv[0] != entryBin || argv[1] != "serve" {
		t.Errorf("ENTRYPOINT+CMD %q: want %s serve -config FILE", argv, entryBin)
	}

	// The Deployment runs this image: same uid, same config path, and every
	// port it declares is exposed.
	d := render(t, overlays[0]).deployment(t)
	c := gslbContainer(t, d)
	if got := configFlag(t, argv[1:]); got != configFlag(t, c.Args) {
		t.Errorf("image runs -config %s, the Deployment mounts %s", got, configFlag(t, c.Args))
	}
	if u := d.Spec.Template.Spec.SecurityContext.RunAsUser; u == nil || strconv.FormatInt(*u, 10) != uid {
		t.Errorf("Deployment runAsUser %s differs from the image USER %q", ptrString(u), user)
	}
	for _, p := range c.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		if key := strconv.Itoa(int(p.ContainerPort)) + "/" + strings.ToLower(string(proto)); !exposed[key] {
			t.Errorf("container port %s is not EXPOSEd (exposed: %v)", key, exposed)
		}
	}
	if _, err := os.Stat(file + ".dockerignore"); err != nil {
		t.Errorf("no %s.dockerignore: the whole tree (.git included) would be sent as context", file)
	}
}
