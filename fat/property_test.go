package fat

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mediafs/mediafs/device"
)

var (
	long     = flag.Bool("long", false, "run the long property and crash tests")
	traceOps = flag.Bool("optrace", false, "log the property test's model after every step")
)

// model is the expected tree: files by path (lower-cased keys), with their
// names as created.
type model struct {
	files map[string][]byte // path → content
	dirs  map[string]bool
}

func (m *model) exists(p string) bool {
	_, f := m.files[p]
	return f || m.dirs[p]
}

func (m *model) paths() []string {
	var out []string
	for p := range m.files {
		out = append(out, p)
	}
	for p := range m.dirs {
		out = append(out, p+"/")
	}
	slices.Sort(out)
	return out
}

var propNames = []string{"a", "B.TXT", "readme.txt", "Long Name.dat", "Ünï.txt", "x1", "dir", "Sub Dir", "q.tar.gz", strings.Repeat("L", 40)}

func TestPropertyRandomOps(t *testing.T) {
	needTools(t, "fsck.fat", "mdir")
	ops, seeds := 200, 3
	if *long {
		ops, seeds = 2000, 10
	}
	cfgs := []struct {
		typ  string
		size int64
		ss   int
	}{{"fat12", 2 << 20, 512}, {"fat16", 32 << 20, 2048}, {"fat32", 80 << 20, 512}, {"fat32", 300 << 20, 2048}}
	for _, c := range cfgs {
		for seed := range seeds {
			t.Run(c.typ+"-"+itoa(c.ss)+"-"+itoa(seed), func(t *testing.T) {
				img, d := newImage(t, c.size, c.ss, FormatOptions{Type: c.typ})
				strict := device.NewStrict(d)
				// Odd seeds write every change through; even ones batch.
				through := seed%2 == 1
				v, err := Open(strict, Options{Writable: true, WriteThrough: through})
				if err != nil {
					t.Fatal(err)
				}
				r := rand.New(rand.NewPCG(uint64(seed), 7))
				m := &model{files: map[string][]byte{}, dirs: map[string]bool{}}
				cs := v.Info().ClusterSize
				pick := func() string {
					var parents []string
					parents = append(parents, "")
					for p := range m.dirs {
						parents = append(parents, p)
					}
					slices.Sort(parents)
					par := parents[r.IntN(len(parents))]
					return path.Join(par, propNames[r.IntN(len(propNames))])
				}
				openRW := func(p string) *File {
					f, err := v.OpenFile(p, os.O_RDWR, 0)
					if err != nil {
						t.Fatal(err)
					}
					return f
				}
				existing := func() string {
					all := m.paths()
					if len(all) == 0 {
						return ""
					}
					return strings.TrimSuffix(all[r.IntN(len(all))], "/")
				}
				for i := range ops {
					desc := ""
					switch r.IntN(8) {
					case 0, 1: // create/overwrite
						p := pick()
						if m.dirs[p] {
							continue
						}
						data := randBytes(r.Uint64(), r.IntN(3*cs+2))
						writeAll(t, v, p, data)
						m.files[p] = data
						desc = fmt.Sprintf("create %s %d", p, len(data))
					case 2: // append or write at
						p := existing()
						if _, ok := m.files[p]; !ok {
							continue
						}
						f := openRW(p)
						off := int64(r.IntN(len(m.files[p]) + cs))
						data := randBytes(r.Uint64(), r.IntN(2*cs))
						if _, err := f.WriteAt(data, off); err != nil {
							t.Fatal(err)
						}
						f.Close()
						cur := m.files[p]
						if need := off + int64(len(data)); len(data) > 0 && need > int64(len(cur)) {
							cur = append(cur, make([]byte, need-int64(len(cur)))...)
						}
						if len(data) > 0 {
							copy(cur[off:], data)
						}
						m.files[p] = cur
						desc = fmt.Sprintf("writeat %s %d+%d", p, off, len(data))
					case 3: // truncate
						p := existing()
						if _, ok := m.files[p]; !ok {
							continue
						}
						f := openRW(p)
						n := int64(r.IntN(2*cs + 10))
						if err := f.Truncate(n); err != nil {
							t.Fatal(err)
						}
						f.Close()
						cur := m.files[p]
						if n > int64(len(cur)) {
							cur = append(cur, make([]byte, n-int64(len(cur)))...)
						}
						m.files[p] = cur[:n]
						desc = fmt.Sprintf("truncate %s %d", p, n)
					case 4: // mkdir
						p := pick()
						if m.exists(p) {
							continue
						}
						if err := v.Mkdir(p, 0o755); err != nil {
							t.Fatal(err)
						}
						m.dirs[p] = true
					case 5: // remove (all)
						p := existing()
						if p == "" {
							continue
						}
						desc = "removeall " + p
						if err := v.RemoveAll(p); err != nil {
							t.Fatal(err)
						}
						for q := range m.files {
							if q == p || strings.HasPrefix(q, p+"/") {
								delete(m.files, q)
							}
						}
						for q := range m.dirs {
							if q == p || strings.HasPrefix(q, p+"/") {
								delete(m.dirs, q)
							}
						}
					case 6: // rename
						p, q := existing(), pick()
						if p == "" || m.exists(q) || q == p || strings.HasPrefix(q, p+"/") {
							continue
						}
						desc = "rename " + p + " -> " + q
						if err := v.Rename(p, q); err != nil {
							t.Fatalf("rename %s %s: %v", p, q, err)
						}
						if data, ok := m.files[p]; ok {
							delete(m.files, p)
							m.files[q] = data
						} else {
							for x, data := range m.files {
								if strings.HasPrefix(x, p+"/") {
									delete(m.files, x)
									m.files[q+x[len(p):]] = data
								}
							}
							for x := range m.dirs {
								if x == p || strings.HasPrefix(x, p+"/") {
									delete(m.dirs, x)
									m.dirs[q+x[len(p):]] = true
								}
							}
						}
					case 7: // chtimes
						p := existing()
						if p == "" {
							continue
						}
						mt := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
						if err := v.Chtimes(p, mt, mt); err != nil {
							t.Fatal(err)
						}
					}
					if *traceOps {
						t.Logf("step %d: %s", i, desc)
					}
					checkModel(t, v, m, i, through)
					if !through && r.IntN(16) == 0 {
						if err := v.Sync(); err != nil {
							t.Fatal(err)
						}
					}
				}
				if err := v.Close(); err != nil {
					t.Fatal(err)
				}
				checkBalanced(t, v)
				fsckClean(t, img)
				if got, want := mdirPaths(t, img), m.paths(); !slices.Equal(got, want) {
					t.Fatalf("mdir lists\n%v\nwant\n%v", got, want)
				}
				check7zip(t, img, m)
			})
		}
	}
}

func checkModel(t *testing.T, v *FS, m *model, step int, through bool) {
	t.Helper()
	got := walkPaths(t, v)
	if want := m.paths(); !slices.Equal(got, want) {
		t.Fatalf("step %d: listing\n%v\nwant\n%v", step, got, want)
	}
	for p, data := range m.files {
		b, err := fs.ReadFile(v, p)
		if err != nil || !bytes.Equal(b, data) {
			t.Fatalf("step %d: %s: %v (%d bytes, want %d)", step, p, err, len(b), len(data))
		}
	}
	if st := v.CacheStats(); st.Pins != 0 || (through && st.Dirty != 0) {
		t.Fatalf("step %d: cache %+v", step, st)
	}
	_ = errors.Is
}

// check7zip extracts the image with 7-Zip, when it is installed, and
// compares the tree and every file's bytes with the model.
func check7zip(t *testing.T, img string, m *model) {
	t.Helper()
	if _, err := exec.LookPath("7zz"); err != nil {
		t.Log("7zz is not installed (CI installs it); 7-Zip check skipped")
		return
	}
	out := t.TempDir()
	runTool(t, "7zz", "x", "-y", "-o"+out, img)
	var got []string
	err := filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == out {
			return err
		}
		rel := filepath.ToSlash(strings.TrimPrefix(p, out+string(filepath.Separator)))
		if d.IsDir() {
			got = append(got, rel+"/")
			return nil
		}
		got = append(got, rel)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if want, ok := m.files[rel]; !ok || !bytes.Equal(b, want) {
			t.Errorf("7-Zip reads %s: %d bytes, the model has %d (present %v)", rel, len(b), len(want), ok)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if want := m.paths(); !slices.Equal(got, want) {
		t.Fatalf("7-Zip extracts\n%v\nwant\n%v", got, want)
	}
}
