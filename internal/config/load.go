package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// MaxFileBytes bounds the size of a config file.
const MaxFileBytes = 16 << 20

//go:embed demo.yaml
var demoYAML []byte

// DemoSource is the Source of the embedded demo config.
const DemoSource = "embedded demo"

// DemoYAML returns the text of the embedded demo config.
func DemoYAML() []byte { return bytes.Clone(demoYAML) }

// Demo returns the embedded demo config.
func Demo() (*Config, error) {
	cfg, err := Parse(DemoSource, demoYAML)
	if err != nil {
		return nil, fmt.Errorf("embedded demo config: %w", err)
	}
	cfg.Demo = true
	return cfg, nil
}

// Load reads, decodes, defaults and validates the config file at path.
// Relative file paths inside it are resolved against the file's directory.
// The error, if any, is an Errors value listing every problem found.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	defer f.Close()
	data, err := readLimited(f, MaxFileBytes)
	if err != nil {
		return nil, fmt.Errorf("load config %s: %w", path, err)
	}
	return parse(path, data, filepath.Dir(path))
}

func readLimited(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("file larger than %d bytes", limit)
	}
	return data, nil
}

// Parse decodes, defaults and validates config text. name is used in error
// messages; relative paths in the config are resolved against the current
// directory.
func Parse(name string, data []byte) (*Config, error) {
	return parse(name, data, "")
}

var yamlLineRE = regexp.MustCompile(`(?s)^(?:yaml: )?line (\d+): (.*)$`)

func parse(name string, data []byte, baseDir string) (*Config, error) {
	errs := &Errors{File: name}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		errs.addYAML(err)
		return nil, errs
	}
	idx := &nodeIndex{root: &root}
	if len(root.Content) == 0 {
		errs.add(1, "", "empty config")
		return nil, errs
	}
	cfg := &Config{Source: name}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			errs.addYAML(err)
			return nil, errs
		}
		for _, msg := range te.Errors {
			line, text := 0, msg
			if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
				line, _ = strconv.Atoi(m[1])
				text = m[2]
			}
			errs.add(line, idx.pathAtLine(line), tidyYAMLMessage(text))
		}
	}
	v := &validator{cfg: cfg, idx: idx, errs: errs, baseDir: baseDir}
	v.defaults()
	v.validate()
	if len(errs.List) > 0 {
		errs.sort()
		return nil, errs
	}
	return cfg, nil
}

var fieldNotFoundRE = regexp.MustCompile(`^field (\S+) not found in type \S+$`)

func tidyYAMLMessage(s string) string {
	if m := fieldNotFoundRE.FindStringSubmatch(s); m != nil {
		return fmt.Sprintf("unknown field %q", m[1])
	}
	return s
}

// Error is one problem in a config file.
type Error struct {
	File string
	Line int
	// Path is the field path, e.g. "services.www.pool".
	Path string
	Msg  string
}

func (e Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors lists every problem found in a config file.
type Errors struct {
	File string
	List []Error
}

func (e *Errors) Error() string {
	msgs := make([]string, len(e.List))
	for i, x := range e.List {
		msgs[i] = x.Error()
	}
	return strings.Join(msgs, "\n")
}

func (e *Errors) add(line int, path, msg string) {
	e.List = append(e.List, Error{File: e.File, Line: line, Path: path, Msg: msg})
}

func (e *Errors) addYAML(err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	e.add(line, "", msg)
}

func (e *Errors) sort() {
	sort.SliceStable(e.List, func(i, j int) bool { return e.List[i].Line < e.List[j].Line })
}

// nodeIndex maps field paths to YAML lines.
type nodeIndex struct {
	root *yaml.Node
}

// PathElem is a mapping key (string) or a sequence index (int).
type pathElem = any

func renderPath(p []pathElem) string {
	var b strings.Builder
	for _, e := range p {
		switch e := e.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", e)
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(e)
		}
	}
	return b.String()
}

// walk follows p from the document root. It returns the line of the
// deepest element found (a mapping key's line for fields) and whether the
// whole path exists.
func (x *nodeIndex) walk(p []pathElem) (line int, found bool) {
	n := x.root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line = n.Line
	for _, e := range p {
		var next *yaml.Node
		switch e := e.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == e {
						line, next = n.Content[i].Line, n.Content[i+1]
						break
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && e >= 0 && e < len(n.Content) {
				next = n.Content[e]
				line = next.Line
			}
		}
		if next == nil {
			return line, false
		}
		n = next
	}
	return line, true
}

// line returns the line of the node at p, or of its nearest existing
// ancestor when the field is absent.
func (x *nodeIndex) line(p []pathElem) int {
	line, _ := x.walk(p)
	return line
}

// has reports whether the field at p is present in the YAML.
func (x *nodeIndex) has(p []pathElem) bool {
	_, found := x.walk(p)
	return found
}

// pathAtLine finds the deepest field path whose key or value starts at line.
func (x *nodeIndex) pathAtLine(line int) string {
	var found []pathElem
	var walk func(n *yaml.Node, p []pathElem)
	walk = func(n *yaml.Node, p []pathElem) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, p)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				cp := append(append([]pathElem(nil), p...), k.Value)
				if k.Line == line || v.Line == line {
					found = cp
				}
				walk(v, cp)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				cp := append(append([]pathElem(nil), p...), i)
				if c.Line == line && c.Kind == yaml.ScalarNode {
					found = cp
				}
				walk(c, cp)
			}
		}
	}
	walk(x.root, nil)
	return renderPath(found)
}
