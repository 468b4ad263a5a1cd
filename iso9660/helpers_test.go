package iso9660

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mediafs/mediafs/device"
)

// corpusDir is the shared corpus of real images (never copied into the repo).
const corpusDir = "../../shared/corpus"

// loadImage reads an image file (gunzipping NAME.gz) into memory.
func loadImage(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if b, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// strictDevice presents an image as a 2048-byte-sector device that refuses
// unaligned reads and reads past the end (T-ISO-3).
func strictDevice(img []byte) *device.Strict {
	return device.NewStrict(device.NewMemory(img, sectorSize))
}

func openImage(t testing.TB, img []byte, opts Options) (*FS, *device.Strict) {
	t.Helper()
	d := strictDevice(img)
	f, err := Open(d, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return f, d
}

// checkNoPins fails when a metadata block is still pinned.
func checkNoPins(t testing.TB, f *FS) {
	t.Helper()
	if s := f.CacheStats(); s.Pins != 0 || s.Pinned != 0 {
		t.Errorf("cache holds pins after the operations: %+v", s)
	}
}

// entryRow is one row of a listing: what tests compare.
type entryRow struct {
	typ    string
	perm   fs.FileMode
	uid    uint32
	gid    uint32
	size   int64
	mtime  time.Time
	sha    string
	target string
	rdev   [2]uint32
}

func typeName(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "dir"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m&fs.ModeCharDevice != 0:
		return "char"
	case m&fs.ModeDevice != 0:
		return "block"
	case m&fs.ModeNamedPipe != 0:
		return "fifo"
	case m&fs.ModeSocket != 0:
		return "socket"
	}
	return "file"
}

// walkImage lists every entry of f (without the root) with its content
// hash. It fails the test on any error unless tolerant is set, in which case
// errors are returned.
func walkImage(t testing.TB, f *FS, tolerant bool) (map[string]entryRow, []error) {
	t.Helper()
	rows := map[string]entryRow{}
	var errs []error
	var walk func(dir string, depth int)
	walk = func(dir string, depth int) {
		if depth > 300 {
			errs = append(errs, errors.New("walk deeper than 300"))
			return
		}
		ents, err := f.ReadDir(dir)
		if err != nil {
			errs = append(errs, err)
		}
		for _, e := range ents {
			p := e.Name()
			if dir != "." {
				p = dir + "/" + e.Name()
			}
			info, err := e.Info()
			if err != nil {
				errs = append(errs, err)
				continue
			}
			s := info.Sys().(*Sys)
			r := entryRow{typ: typeName(info.Mode()), perm: info.Mode().Perm(), uid: s.UID, gid: s.GID, size: info.Size(), mtime: info.ModTime(), rdev: [2]uint32{s.DevMajor, s.DevMinor}}
			switch r.typ {
			case "dir":
				walk(p, depth+1)
			case "symlink":
				if r.target, err = f.ReadLink(p); err != nil {
					errs = append(errs, err)
				}
			case "file":
				h := sha256.New()
				fl, err := f.Open(p)
				if err != nil {
					errs = append(errs, err)
					break
				}
				n, err := io.Copy(h, fl.(io.Reader))
				fl.Close()
				if err != nil {
					errs = append(errs, err)
				} else if n != info.Size() {
					errs = append(errs, errors.New(p+": read length differs from size"))
				}
				r.sha = hex.EncodeToString(h.Sum(nil))
			}
			rows[p] = r
		}
	}
	walk(".", 0)
	if !tolerant {
		for _, err := range errs {
			t.Errorf("walk: %v", err)
		}
	}
	checkNoPins(t, f)
	return rows, errs
}

// haveTool skips the test when a program is not installed.
func haveTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s is not installed", name)
	}
}

// run runs a command and fails the test with its output on error.
func run(t testing.TB, dir string, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// writeTree creates files under root: "path" → content; a content starting
// with "->" makes a symlink, a path ending in "/" a directory.
func writeTree(t testing.TB, root string, files map[string]string) {
	t.Helper()
	keys := make([]string, 0, len(files))
	for k := range files {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := filepath.Join(root, filepath.FromSlash(k))
		if strings.HasSuffix(k, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		v := files[k]
		if strings.HasPrefix(v, "->") {
			if err := os.Symlink(v[2:], p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// badDevice fails every read that covers sector bad.
type badDevice struct {
	*device.Strict
	bad int64
}

func (d *badDevice) ReadAt(p []byte, off int64) (int, error) {
	first, last := off/sectorSize, (off+int64(len(p))-1)/sectorSize
	if d.bad >= first && d.bad <= last {
		return 0, &device.SectorError{Op: "read", Sector: d.bad, Err: device.ErrBadSector}
	}
	return d.Strict.ReadAt(p, off)
}
