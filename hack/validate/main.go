// Command validate checks the rules of docs/architecture.md that the compiler does not: which packages may
// import which (containerd only in its adapters, leaf packages stay leaves, cmd/berthd only the composition
// root and the API server), no context.Background/TODO outside main and tests, no branch on an error's
// text, the size of files and of types (methods of `struct{ *T }` views counted as T's; no type is
// exempt). `make validate` runs it; it prints every violation and exits 1. Known exceptions to import
// rules are printed as such and do not fail the run; each names what removes it.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

const module = "github.com/berthd/berthd"

type pkg struct {
	ImportPath string
	Dir        string
	Imports    []string
	GoFiles    []string
	TestGoFiles,
	XTestGoFiles []string
}

func main() {
	top := flag.Int("methods", 0, "also print the `n` types with the most methods (views included), largest first")
	flag.Parse()
	out, err := exec.Command("go", "list", "-json", "./...").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "go list:", err)
		os.Exit(2)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var problems, known []string
	var largest []string
	type sized struct {
		line string
		n    int
	}
	var all []sized
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		for _, imp := range p.Imports {
			msg, why := importRule(rel, imp)
			if msg != "" {
				problems = append(problems, fmt.Sprintf("%s imports %s: %s", p.ImportPath, imp, msg))
			}
			if why != "" {
				known = append(known, fmt.Sprintf("%s imports %s: %s", p.ImportPath, imp, why))
			}
		}
		files := append(append(append([]string{}, p.GoFiles...), p.TestGoFiles...), p.XTestGoFiles...)
		if *top > 0 {
			for _, c := range methodCounts(parseFiles(p.Dir, p.GoFiles)) {
				all = append(all, sized{fmt.Sprintf("%4d %s.%s%s", c.total(), rel, c.name, c.detail()), c.total()})
			}
		}
		problems = append(problems, checkSizes(p.Dir, files)...)
		for _, f := range p.GoFiles {
			problems = append(problems, checkContext(rel, filepath.Join(p.Dir, f))...)
			problems = append(problems, checkErrorText(rel, filepath.Join(p.Dir, f))...)
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].n > all[j].n })
	for i := 0; i < *top && i < len(all); i++ {
		largest = append(largest, all[i].line)
	}
	for _, l := range largest {
		fmt.Println(l)
	}
	sort.Strings(problems)
	sort.Strings(known)
	for _, k := range known {
		fmt.Println("known exception:", k)
	}
	for _, pr := range problems {
		fmt.Println(pr)
	}
	if len(problems) > 0 {
		os.Exit(1)
	}
}

func under(rel string, prefixes ...string) bool {
	for _, p := range prefixes {
		if rel == p || strings.HasPrefix(rel, p+"/") {
			return true
		}
	}
	return false
}

// containerdAdapters are the packages that talk to containerd; every other package reaches it through them.
// daemon (the package itself, not what is under it) dials the client and hands it down. image/buildkit
// is one because BuildKit's containerd worker is a containerd client of its own.
var containerdAdapters = []string{"libcontainerd/remote", "layer", "image/store", "distribution", "image/buildkit"}

// leaves may import only the standard library and the few packages listed: everything else depends on them.
var leaves = map[string][]string{
	"api/types":           {"api/types"},
	"volume":              nil,
	"plugin/getter":       {"plugin/v1"},
	"libcontainerd/types": {"github.com/opencontainers/runtime-spec"},
}

// cmdImports is what cmd/berthd may import of the module besides daemon itself (the composition root):
// the API server and its routers; daemon/config, which is the plain struct the flags fill (the flags live
// in cmd, the struct, its defaults and its validation do not, so daemon.New and SIGHUP reload share them);
// and metrics, whose handler cmd serves on --metrics-addr as it serves the API's listeners.
var cmdImports = []string{"daemon/config", "api/server", "metrics"}

// cmdKnown are imports of cmd/berthd outside cmdImports that are tolerated for now; each is a known
// exception with what removes it, not a rule. None today: daemon re-exports what main needs (daemon/cmd.go).
var cmdKnown = map[string]string{}

func stdlib(imp string) bool { return !strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") }

// checkImport applies the dependency rules to one non-test import of package rel.
func checkImport(rel, imp string) string {
	msg, _ := importRule(rel, imp)
	return msg
}

// importRule returns the broken rule, or a known exception's reason.
func importRule(rel, imp string) (problem, known string) {
	own := strings.HasPrefix(imp, module+"/") || imp == module
	impRel := strings.TrimPrefix(strings.TrimPrefix(imp, module), "/")
	std := stdlib(imp)
	switch {
	case under(rel, "api/types"):
		if !std && !(own && under(impRel, "api/types")) {
			return "api/types imports only the standard library", ""
		}
	case under(rel, "api/server/router") && rel != "api/server/router":
		if !std && !(own && (under(impRel, "api/types") || impRel == "api" || impRel == "api/server/router" || impRel == "api/server/httputils")) {
			return "routers import only api/types and api/server/{router,httputils}", ""
		}
	case rel == "cmd/berthd":
		if own && impRel != "daemon" && !under(impRel, cmdImports...) {
			if why, ok := cmdKnown[impRel]; ok {
				return "", why
			}
			return "cmd/berthd imports only daemon, daemon/config and api/server/...", ""
		}
	}
	if allowed, ok := leaves[rel]; ok && !std {
		leafOK := false
		for _, a := range allowed {
			if (own && under(impRel, a)) || (!own && (imp == a || strings.HasPrefix(imp, a+"/"))) {
				leafOK = true
			}
		}
		if !leafOK {
			return rel + " is a leaf: it imports only the standard library" + leafList(allowed), ""
		}
	}
	if own && under(rel, "volume", "plugin", "layer", "image", "distribution", "libcontainerd") && under(impRel, "daemon", "api/server") {
		return "services and stores never import daemon or api/server", ""
	}
	if own && under(rel, "volume") && under(impRel, "plugin") && !under(impRel, "plugin/getter", "plugin/v1") {
		return "volume/... meets plugin/... only through plugin/getter and plugin/v1", ""
	}
	if own && under(rel, "plugin") && under(impRel, "volume") {
		return "plugin/... never imports volume/...", ""
	}
	// The builder uses containerd's archive package as a library (context extraction), never a client.
	builderArchive := under(rel, "image/builder") && (imp == "github.com/containerd/containerd/archive" || strings.HasPrefix(imp, "github.com/containerd/containerd/archive/"))
	if strings.HasPrefix(imp, "github.com/containerd/containerd") && !builderArchive && rel != "daemon" && !under(rel, containerdAdapters...) && !under(rel, "hack", "integration") {
		return "only the adapters (libcontainerd/remote, layer, image/store, distribution, image/buildkit) and daemon, to dial, import containerd", ""
	}
	return "", ""
}

func leafList(allowed []string) string {
	if len(allowed) == 0 {
		return ""
	}
	return " and " + strings.Join(allowed, ", ")
}

// contextAllowed are the non-test files outside main that may start a context from nothing, each with
// its reason. Everything else takes ctx from its caller: retrofitting context later costs far more.
var contextAllowed = map[string]string{
	"plugin/v1/registry.go":                 "the registry's own lifetime (background re-activation probes), cancelled by Close, not a request's",
	"daemon/system/system.go":               "runc/tini --version read once at construction, bounded by its own 2 s deadline",
	"daemon/containers/health.go":           "health probes run on the container's own timer; a container lifetime context comes with the containers split",
	"daemon/containers/start.go":            "stdin is closed after the attach request is gone; context.WithoutCancel of the start ctx comes with the containers split",
	"volume/drivers/testsuite/testsuite.go": "a contract test suite: test code in a non-test file",
}

// checkContext reports context.Background() and context.TODO() in a non-test file of package rel
// outside main, hack, integration, test helpers (testutil, testsuite) and contextAllowed.
func checkContext(rel, path string) []string {
	if rel == "cmd/berthd" || under(rel, "hack", "integration") || strings.HasSuffix(rel, "/testutil") || strings.HasSuffix(rel, "/testsuite") {
		return nil
	}
	if _, ok := contextAllowed[filepath.Join(rel, filepath.Base(path))]; ok {
		return nil
	}
	fset := token.NewFileSet()
	af, err := parser.ParseFile(fset, path, nil, 0)
	if err != nil {
		return nil
	}
	return contextCalls(fset, af)
}

func contextCalls(fset *token.FileSet, af *ast.File) []string {
	name := ""
	for _, imp := range af.Imports {
		if imp.Path.Value == `"context"` {
			name = "context"
			if imp.Name != nil {
				name = imp.Name.Name
			}
		}
	}
	if name == "" {
		return nil
	}
	var problems []string
	ast.Inspect(af, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if id, ok := sel.X.(*ast.Ident); ok && id.Name == name && (sel.Sel.Name == "Background" || sel.Sel.Name == "TODO") {
			problems = append(problems, fmt.Sprintf("%s: context.%s outside main and tests: take ctx from the caller", fset.Position(sel.Pos()), sel.Sel.Name))
		}
		return true
	})
	return problems
}

// errorTextAllowed are the adapters that read the text of an error because the text is all the outside
// gives them, classifying it once where it is born; each with its reason.
var errorTextAllowed = map[string]string{
	"libcontainerd/remote/errors.go": "runc reports a process's configuration errors only in text (gRPC Unknown)",
	"volume/drivers/proxy.go":        "the legacy VolumeDriver protocol carries errors only as the Err string",
}

// checkErrorText reports an error's text tested with a strings function or compared with ==/!= in a
// non-test file: errors are classified by type where they are born, never by their message.
func checkErrorText(rel, path string) []string {
	if under(rel, "hack", "integration") {
		return nil
	}
	if _, ok := errorTextAllowed[filepath.Join(rel, filepath.Base(path))]; ok {
		return nil
	}
	fset := token.NewFileSet()
	af, err := parser.ParseFile(fset, path, nil, 0)
	if err != nil {
		return nil
	}
	return errorTextTests(fset, af)
}

var stringsTests = map[string]bool{"Contains": true, "ContainsAny": true, "HasPrefix": true, "HasSuffix": true, "EqualFold": true, "Index": true}

func errorTextTests(fset *token.FileSet, af *ast.File) []string {
	var problems []string
	report := func(n ast.Node) {
		problems = append(problems, fmt.Sprintf("%s: an error's text decides a branch: classify the error by type where it is born", fset.Position(n.Pos())))
	}
	ast.Inspect(af, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.CallExpr:
			sel, ok := x.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == "strings" && stringsTests[sel.Sel.Name] {
				for _, a := range x.Args {
					if isErrorCall(a) {
						report(x)
						break
					}
				}
			}
		case *ast.BinaryExpr:
			if (x.Op == token.EQL || x.Op == token.NEQ) && (isErrorCall(x.X) || isErrorCall(x.Y)) {
				report(x)
			}
		}
		return true
	})
	return problems
}

// isErrorCall reports e is `x.Error()`, possibly under strings.ToLower/ToUpper/TrimSpace.
func isErrorCall(e ast.Expr) bool {
	call, ok := e.(*ast.CallExpr)
	if !ok {
		return false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	if sel.Sel.Name == "Error" && len(call.Args) == 0 {
		return true
	}
	if id, ok := sel.X.(*ast.Ident); ok && id.Name == "strings" && len(call.Args) == 1 {
		switch sel.Sel.Name {
		case "ToLower", "ToUpper", "TrimSpace":
			return isErrorCall(call.Args[0])
		}
	}
	return false
}

// checkSizes keeps files under 1,000 lines and types under 40 methods, so each stays readable. A view,
// `type v struct{ *T }` (or `struct{ T }`), is more of T's methods on T's state: its methods count as T's.
// There are no exceptions: a type over 40 methods is split by what its parts own.
func checkSizes(dir string, files []string) (problems []string) {
	fset := token.NewFileSet()
	var parsed []*ast.File
	for _, f := range files {
		path := filepath.Join(dir, f)
		src, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		if n := strings.Count(string(src), "\n"); n > 1000 {
			problems = append(problems, fmt.Sprintf("%s has %d lines (max 1000)", path, n))
		}
		af, err := parser.ParseFile(fset, path, src, 0)
		if err != nil {
			continue
		}
		parsed = append(parsed, af)
	}
	for _, c := range methodCounts(parsed) {
		if c.total() <= 40 {
			continue
		}
		problems = append(problems, fmt.Sprintf("%s: type %s has %d methods (max 40)%s", dir, c.name, c.total(), c.detail()))
	}
	return problems
}

// parseFiles parses the named files of dir, skipping any that do not parse (the compiler reports those).
func parseFiles(dir string, files []string) []*ast.File {
	fset := token.NewFileSet()
	var out []*ast.File
	for _, f := range files {
		if af, err := parser.ParseFile(fset, filepath.Join(dir, f), nil, 0); err == nil {
			out = append(out, af)
		}
	}
	return out
}

type methodCount struct {
	name  string
	own   int
	views map[string]int
}

func (c methodCount) total() int {
	n := c.own
	for _, v := range c.views {
		n += v
	}
	return n
}

func (c methodCount) detail() string {
	if len(c.views) == 0 {
		return ""
	}
	var names []string
	for v, n := range c.views {
		names = append(names, fmt.Sprintf("%s %d", v, n))
	}
	sort.Strings(names)
	return fmt.Sprintf(" (%d own, views: %s)", c.own, strings.Join(names, ", "))
}

// methodCounts counts the methods of each type of one package, folding views into their owner.
func methodCounts(files []*ast.File) []methodCount {
	viewOf := map[string]string{}
	methods := map[string]int{}
	for _, af := range files {
		for _, decl := range af.Decls {
			switch d := decl.(type) {
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					ts, ok := spec.(*ast.TypeSpec)
					if !ok {
						continue
					}
					if owner := viewOwner(ts); owner != "" {
						viewOf[ts.Name.Name] = owner
					}
				}
			case *ast.FuncDecl:
				if d.Recv == nil || len(d.Recv.List) == 0 {
					continue
				}
				if name := typeName(d.Recv.List[0].Type); name != "" {
					methods[name]++
				}
			}
		}
	}
	counts := map[string]*methodCount{}
	get := func(name string) *methodCount {
		if counts[name] == nil {
			counts[name] = &methodCount{name: name, views: map[string]int{}}
		}
		return counts[name]
	}
	for name, n := range methods {
		if owner, ok := viewOf[name]; ok {
			get(owner).views[name] += n
			continue
		}
		get(name).own += n
	}
	var out []methodCount
	for _, c := range counts {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// viewOwner is T when ts declares `struct{ *T }` or `struct{ T }` (one embedded field of this package).
func viewOwner(ts *ast.TypeSpec) string {
	st, ok := ts.Type.(*ast.StructType)
	if !ok || st.Fields == nil || len(st.Fields.List) != 1 || len(st.Fields.List[0].Names) != 0 {
		return ""
	}
	t := st.Fields.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}

func typeName(t ast.Expr) string {
	if st, ok := t.(*ast.StarExpr); ok {
		t = st.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}
