package mkiso

// Third-party readers used as oracles. Each returns the regular files it
// sees as path -> content (symlinks as "->" + target), with paths in the
// reader's own naming, starting with "/".

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed", name)
	}
	return p
}

func runTool(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

var pythonWithPycdlib string

func pycdlibPython(t *testing.T) string {
	t.Helper()
	if pythonWithPycdlib == "" {
		for _, py := range []string{"python3", "/usr/bin/python3"} {
			if exec.Command(py, "-c", "import pycdlib").Run() == nil {
				pythonWithPycdlib = py
				break
			}
		}
		if pythonWithPycdlib == "" {
			pythonWithPycdlib = "-"
		}
	}
	if pythonWithPycdlib == "-" {
		t.Skip("python3 with pycdlib not installed")
	}
	return pythonWithPycdlib
}

const pycdlibScript = `
import sys, io, json, pycdlib
img, mode = sys.argv[1], sys.argv[2]
kw = {'iso': 'iso_path', 'rr': 'rr_path', 'joliet': 'joliet_path'}[mode]
iso = pycdlib.PyCdlib()
iso.open(img)
out = {}
for root, dirs, files in iso.walk(**{kw: '/'}):
    for f in files:
        p = root.rstrip('/') + '/' + f
        rec = iso.get_record(**{kw: p})
        if mode == 'rr' and rec.rock_ridge is not None and rec.is_symlink():
            out[p] = '->' + rec.rock_ridge.symlink_path().decode()
            continue
        b = io.BytesIO()
        iso.get_file_from_iso_fp(b, **{kw: p})
        out[p] = b.getvalue().hex()
iso.close()
json.dump(out, sys.stdout)
`

// readPycdlib reads every file with pycdlib; mode is iso, rr or joliet.
func readPycdlib(t *testing.T, img, mode string) map[string][]byte {
	t.Helper()
	py := pycdlibPython(t)
	var raw map[string]string
	if err := json.Unmarshal(runTool(t, py, "-c", pycdlibScript, img, mode), &raw); err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for p, v := range raw {
		if strings.HasPrefix(v, "->") {
			out[p] = []byte(v)
			continue
		}
		b, err := hex.DecodeString(v)
		if err != nil {
			t.Fatal(err)
		}
		out[p] = b
	}
	return out
}

var flsLine = regexp.MustCompile(`^(\S)/(\S) (?:\* )?([0-9]+)(?:-[0-9-]+)?:\t(.*)$`)

// readSleuthKit lists the image with fls -r -p and extracts with icat.
// The Sleuth Kit reads directories in whole 2048-byte sectors and fails
// when the image ends mid-sector, so such an image is given to it padded
// with zeros to the next sector (the volume itself is unchanged).
func readSleuthKit(t *testing.T, img string) map[string][]byte {
	t.Helper()
	fls := needTool(t, "fls")
	icat := needTool(t, "icat")
	if fi, err := os.Stat(img); err != nil {
		t.Fatal(err)
	} else if fi.Size()%2048 != 0 {
		b, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		img = filepath.Join(t.TempDir(), "padded.iso")
		if err := os.WriteFile(img, append(b, make([]byte, 2048-fi.Size()%2048)...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := map[string][]byte{}
	for _, line := range strings.Split(string(runTool(t, fls, "-f", "iso9660", "-r", "-p", img)), "\n") {
		m := flsLine.FindStringSubmatch(line)
		if m == nil {
			if line != "" {
				t.Logf("fls: unparsed line %q", line)
			}
			continue
		}
		if m[1] != "r" {
			continue
		}
		out["/"+m[4]] = runTool(t, icat, "-f", "iso9660", img, m[3])
	}
	return out
}

// readIsoinfo extracts each of paths with isoinfo (flag "", "-R" or "-J").
func readIsoinfo(t *testing.T, img, flag string, paths []string) map[string][]byte {
	t.Helper()
	isoinfo := needTool(t, "isoinfo")
	out := map[string][]byte{}
	for _, p := range paths {
		arg := p
		if flag == "-J" {
			arg = latin1(p) // isoinfo's default Joliet charset
		}
		args := []string{"-i", img, "-x", arg}
		if flag != "" {
			args = append([]string{flag}, args...)
		}
		out[p] = runTool(t, isoinfo, args...)
	}
	return out
}

func latin1(s string) string {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r))
	}
	return string(b)
}

// listIsoinfo returns isoinfo -f's listing (files and directories).
func listIsoinfo(t *testing.T, img, flag string) []string {
	t.Helper()
	isoinfo := needTool(t, "isoinfo")
	args := []string{"-i", img, "-f"}
	if flag != "" {
		args = append([]string{flag}, args...)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(runTool(t, isoinfo, args...))), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}

// readExtracted reads back what an extractor wrote into dir.
func readExtracted(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := "/" + filepath.ToSlash(strings.TrimPrefix(p, dir+string(filepath.Separator)))
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			out[rel] = []byte("->" + target)
			return err
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			out[rel] = b
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func readBsdtar(t *testing.T, img string) map[string][]byte {
	t.Helper()
	bsdtar := needTool(t, "bsdtar")
	dir := t.TempDir()
	runTool(t, bsdtar, "-xf", img, "-C", dir)
	return readExtracted(t, dir)
}

func read7zz(t *testing.T, img string) map[string][]byte {
	t.Helper()
	sz := needTool(t, "7zz")
	dir := t.TempDir()
	runTool(t, sz, "x", "-y", "-bd", "-o"+dir, img)
	return readExtracted(t, dir)
}

// isoNorm folds an ISO 9660 path the way the tests compare them:
// lower case, no ";1", no trailing "." on a component.
func isoNorm(p string) string {
	parts := strings.Split(strings.ToLower(p), "/")
	for i, c := range parts {
		if j := strings.IndexByte(c, ';'); j >= 0 {
			c = c[:j]
		}
		parts[i] = strings.TrimSuffix(c, ".")
	}
	return strings.Join(parts, "/")
}

// sameFiles reports differences between want and got, comparing paths
// through norm (nil: exact).
func sameFiles(t *testing.T, who string, want, got map[string][]byte, norm func(string) string) {
	t.Helper()
	if norm == nil {
		norm = func(s string) string { return s }
	}
	g := map[string][]byte{}
	for p, b := range got {
		g[norm(p)] = b
	}
	for p, b := range want {
		gb, ok := g[norm(p)]
		switch {
		case !ok:
			t.Errorf("%s: %s missing", who, p)
		case !bytes.Equal(gb, b):
			t.Errorf("%s: %s: %d bytes differ from the source's %d", who, p, len(gb), len(b))
		}
		delete(g, norm(p))
	}
	for p := range g {
		t.Errorf("%s: unexpected file %s", who, p)
	}
}
