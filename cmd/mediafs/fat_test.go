package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

func mtools(t *testing.T, img string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], append([]string{"-i", img}, args[1:]...)...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1", "TZ=UTC")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
	return string(out)
}

type lsEntry struct {
	Path, Type, Mode, MTime string
	Size, Alloc             int64
	Attrs                   *string
}

func lsJSON(t *testing.T, args ...string) map[string]lsEntry {
	t.Helper()
	out, stderr, code := mediafsRun(t, append([]string{"ls", "-R", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("ls %v: exit %d: %s", args, code, stderr)
	}
	got := map[string]lsEntry{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var e lsEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("ls --json line %q: %v", line, err)
		}
		got[e.Path] = e
	}
	return got
}

// fill copies the host tree src into the FAT image with mcopy -s -m (which
// keeps mtimes).
func fill(t *testing.T, img, src string) {
	t.Helper()
	ents, _ := os.ReadDir(src)
	var args []string
	for _, e := range ents {
		args = append(args, filepath.Join(src, e.Name()))
	}
	mtools(t, img, append(append([]string{"mcopy", "-s", "-m", "-Q"}, args...), "::/")...)
}

// compareWithSource checks the listing and every file's bytes (through
// extract) against the host tree.
func compareWithSource(t *testing.T, img, src string, extra ...string) {
	t.Helper()
	got := lsJSON(t, append(extra, img)...)
	n := 0
	filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if p == src {
			return nil
		}
		n++
		rel := "/" + filepath.ToSlash(strings.TrimPrefix(p, src+"/"))
		e, ok := got[rel]
		if !ok {
			t.Errorf("%s: not listed", rel)
			return nil
		}
		fi, _ := d.Info()
		if d.IsDir() != (e.Type == "dir") || (!d.IsDir() && fi.Size() != e.Size) {
			t.Errorf("%s: listed as %s of %d bytes", rel, e.Type, e.Size)
		}
		if e.Attrs == nil {
			t.Errorf("%s: no attrs in ls --json", rel)
		}
		return nil
	})
	if len(got) != n {
		t.Errorf("listed %d entries, the source has %d", len(got), n)
	}
	dest := t.TempDir()
	if _, stderr, code := mediafsRun(t, append(append([]string{"extract", "-q"}, extra...), img, dest)...); code != 0 {
		t.Fatalf("extract: %d %s", code, stderr)
	}
	checkTree(t, src, dest, "mediafs extract")
}

func writeTree(t *testing.T, files map[string]int) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	for name, n := range files {
		p := filepath.Join(src, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i*31 + len(name))
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, testTime, testTime)
	}
	return src
}

// Standard floppies made by mformat, filled by mcopy with long, mixed-case
// and non-ASCII names.
func TestFloppies(t *testing.T) {
	need(t, "mformat", "mcopy")
	src := writeTree(t, map[string]int{
		"README.TXT":              100,
		"readme.txt.bak":          10,
		"Mixed Case Name.Txt":     2000,
		"Ünïcödé – naïve £.txt":   513,
		"DIR/sub dir/deep/file.c": 4097,
		"DIR/EMPTY":               0,
		"a-name-of-sixty-characters-is-long-but-fits-in-vfat-names.dat": 1,
	})
	for _, kb := range []int{360, 720, 1200, 1440, 2880} {
		t.Run(fmt.Sprint(kb), func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "floppy.img")
			mtools(t, img, "mformat", "-C", "-f", fmt.Sprint(kb), "-v", "FLOPPY", "::")
			fill(t, img, src)
			compareWithSource(t, img, src)
			out, _, code := mediafsRun(t, "info", "--json", img)
			var in map[string]any
			json.Unmarshal([]byte(out), &in)
			if code != 0 || in["fs"] != "fat12" || in["label"] != "FLOPPY" || in["sector_size"] != 512.0 {
				t.Fatalf("info: %v", in)
			}
			// mdir's free space is ours too.
			mdir := mtools(t, img, "mdir", "::/")
			free := int64(in["free"].(float64))
			if !strings.Contains(strings.ReplaceAll(mdir, " ", ""), fmt.Sprintf("%dbytesfree", free)) {
				t.Errorf("free %d does not match mdir:\n%s", free, mdir)
			}
		})
	}
}

// Thousands of files in one directory and a deep tree, on FAT16 and FAT32
// with 2048-byte sectors (magneto-optical media), read as 7-Zip reads them.
func TestManyFilesAndDeepTrees(t *testing.T) {
	need(t, "mkfs.fat", "mcopy")
	files := map[string]int{}
	for i := range 3000 {
		// Distinct leading characters: mtools takes minutes to invent ~N
		// tails for thousands of names that share a prefix.
		files[fmt.Sprintf("many/%04d file with a long name.txt", i)] = i % 700
	}
	deep := "deep"
	for i := range 20 {
		deep += fmt.Sprintf("/level %02d", i)
	}
	files[deep+"/bottom.txt"] = 12345
	src := writeTree(t, files)
	for _, tc := range []struct{ fat, ss int }{{16, 2048}, {32, 512}} {
		t.Run(fmt.Sprintf("fat%d-%d", tc.fat, tc.ss), func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "fat.img")
			f, _ := os.Create(img)
			f.Truncate(300 << 20)
			f.Close()
			sh(t, "", "mkfs.fat", "-F", fmt.Sprint(tc.fat), "-S", fmt.Sprint(tc.ss), "-n", "MANY", img)
			fill(t, img, src)
			compareWithSource(t, img, src)
			if _, err := exec.LookPath("7zz"); err == nil {
				out := sh(t, "", "7zz", "l", "-slt", "-ba", img)
				var names []string
				for _, l := range strings.Split(out, "\n") {
					if p, ok := strings.CutPrefix(l, "Path = "); ok {
						names = append(names, "/"+p)
					}
				}
				var ours []string
				for p := range lsJSON(t, img) {
					ours = append(ours, p)
				}
				sort.Strings(names)
				sort.Strings(ours)
				if fmt.Sprint(names) != fmt.Sprint(ours) {
					t.Errorf("listing differs from 7-Zip's (%d vs %d names)", len(ours), len(names))
				}
			}
		})
	}
}

// FAT times carry no zone: --tz says which one they are in. Attributes
// show in ls --json; a read-only file extracts as 0444.
func TestTimeZoneAttrsAndCodePage(t *testing.T) {
	need(t, "mkfs.fat", "mcopy", "mattrib")
	img := filepath.Join(t.TempDir(), "fat.img")
	f, _ := os.Create(img)
	f.Truncate(8 << 20)
	f.Close()
	sh(t, "", "mkfs.fat", "-F", "12", "-n", "TZTEST", img)
	src := writeTree(t, map[string]int{"RO.TXT": 5, "HIDDEN.TXT": 6, "ABC.TXT": 7})
	fill(t, img, src)
	mtools(t, img, "mattrib", "+r", "::/RO.TXT")
	mtools(t, img, "mattrib", "+h", "::/HIDDEN.TXT")

	utc := lsJSON(t, img)
	fatTime := testTime.Truncate(2 * time.Second) // FAT keeps even seconds
	if e := utc["/RO.TXT"]; e.MTime != fatTime.Format(time.RFC3339) || e.Attrs == nil || !strings.Contains(*e.Attrs, "R") {
		t.Errorf("RO.TXT: %+v", e)
	}
	if e := utc["/HIDDEN.TXT"]; e.Attrs == nil || !strings.Contains(*e.Attrs, "H") {
		t.Errorf("HIDDEN.TXT attrs: %+v", e)
	}
	berlin := lsJSON(t, "--tz", "Europe/Berlin", img)
	if got := berlin["/RO.TXT"].MTime; got != "2021-03-04T05:06:06+01:00" {
		t.Errorf("--tz Europe/Berlin: mtime %s, want the same wall clock in +01:00", got)
	}
	if _, stderr, code := mediafsRun(t, "ls", "--tz", "Mars/Olympus", img); code != exitUsage || !strings.Contains(stderr, "--tz") {
		t.Errorf("bad --tz: exit %d %q", code, stderr)
	}

	dest := t.TempDir()
	if _, stderr, code := mediafsRun(t, "extract", img, dest); code != 0 {
		t.Fatalf("extract: %s", stderr)
	}
	for name, want := range map[string]fs.FileMode{"RO.TXT": 0o444, "ABC.TXT": 0o644} {
		fi, err := os.Stat(filepath.Join(dest, name))
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("extracted %s: %v %v, want %v", name, fi.Mode(), err, want)
		}
	}

	// A short name byte that differs between code pages: 0x9D is ¥ in
	// CP437 and Ø in CP850.
	raw, _ := os.ReadFile(img)
	i := bytes.Index(raw, []byte("ABC     TXT"))
	if i < 0 {
		t.Fatal("short entry ABC.TXT not found")
	}
	raw[i] = 0x9D
	os.WriteFile(img, raw, 0o644)
	for cp, want := range map[string]string{"437": "¥BC.TXT", "850": "ØBC.TXT"} {
		out, stderr, code := mediafsRun(t, "ls", "--codepage", cp, img)
		if code != 0 || !strings.Contains(out, want+"\n") {
			t.Errorf("--codepage %s: exit %d, %q %s; want %s", cp, code, out, stderr, want)
		}
	}
}

// Two directory entries that name the same directory (a cross-link on a
// damaged medium) are walked once: ls -R and extract say so and go on.
func TestCrossLinkedDirectories(t *testing.T) {
	need(t, "mkfs.fat", "mmd", "mcopy")
	img := filepath.Join(t.TempDir(), "x.img")
	f, _ := os.Create(img)
	f.Truncate(4 << 20)
	f.Close()
	sh(t, "", "mkfs.fat", "-F", "12", img)
	mtools(t, img, "mmd", "::/A")
	mtools(t, img, "mmd", "::/B")
	host := filepath.Join(t.TempDir(), "in.txt")
	os.WriteFile(host, []byte("inside A\n"), 0o644)
	mtools(t, img, "mcopy", host, "::/A/IN.TXT")
	raw, _ := os.ReadFile(img)
	a := bytes.Index(raw, []byte("A          \x10"))
	b := bytes.Index(raw, []byte("B          \x10"))
	if a < 0 || b < 0 {
		t.Fatal("directory entries A and B not found")
	}
	copy(raw[b+26:b+28], raw[a+26:a+28]) // B now starts at A's cluster
	os.WriteFile(img, raw, 0o644)

	out, stderr, code := mediafsRun(t, "ls", "-R", img)
	if code != exitFailed || !strings.Contains(stderr, "cross-linked") {
		t.Fatalf("ls -R: exit %d, stderr %q", code, stderr)
	}
	if n := strings.Count(out, "IN.TXT"); n != 1 {
		t.Fatalf("ls -R listed the shared directory's file %d times:\n%s", n, out)
	}
	dest := t.TempDir()
	_, stderr, code = mediafsRun(t, "extract", "--keep-going", img, dest)
	if code != exitFailed || !strings.Contains(stderr, "cross-linked") {
		t.Fatalf("extract: exit %d, stderr %q", code, stderr)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "A/IN.TXT")); err != nil || string(b) != "inside A\n" {
		t.Fatalf("A/IN.TXT: %q %v", b, err)
	}
}
