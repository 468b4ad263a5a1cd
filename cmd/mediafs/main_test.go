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

// mediafsRun runs the CLI in-process.
func mediafsRun(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return o.String(), e.String(), code
}

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (CI installs it): %v", tool, err)
		}
	}
}

func sh(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

var testTime = time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)

// makeSourceTree writes a small tree with the things extraction must get
// right: nested dirs, long and mixed-case names, modes, mtimes, an empty
// file, a relative symlink and one that points outside.
func makeSourceTree(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "src")
	files := map[string]string{
		"README.TXT":                      "read me\n",
		"docs/A long Name with Spaces.md": strings.Repeat("long name\n", 300),
		"docs/empty":                      "",
		"bin/tool.sh":                     "#!/bin/sh\necho hi\n",
		"deep/a/b/c/d/e/f/g/h/i/leaf.txt": "nine levels down\n",
		"data/big.bin":                    strings.Repeat("0123456789abcdef", 70000),
	}
	for name, data := range files {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(root, "bin/tool.sh"), 0o755)
	os.Symlink("../README.TXT", filepath.Join(root, "docs/readme-link"))
	os.Symlink("/etc/passwd", filepath.Join(root, "docs/outside-link"))
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if d.Type()&fs.ModeSymlink == 0 {
			os.Chtimes(p, testTime, testTime)
		}
		return nil
	})
	return root
}

func makeISO(t *testing.T, src string, flags ...string) string {
	t.Helper()
	need(t, "genisoimage")
	img := filepath.Join(t.TempDir(), "test.iso")
	args := append([]string{"-quiet", "-o", img}, flags...)
	sh(t, "", "genisoimage", append(args, src)...)
	return img
}

func TestExitStatuses(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.img")
	os.WriteFile(junk, bytes.Repeat([]byte{0x5A}, 100000), 0o644)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"ls"}, exitUsage, "usage"},
		{[]string{"frobnicate"}, exitUsage, "unknown command"},
		{[]string{"ls", "--bogus", junk}, exitUsage, "bogus"},
		{[]string{"ls", "--namespace", "ufs", junk}, exitUsage, "namespace"},
		{[]string{"ls", filepath.Join(dir, "missing.iso")}, exitNoImage, "no such file"},
		{[]string{"info", junk}, exitNoImage, "no fat or iso 9660"},
	} {
		_, stderr, code := mediafsRun(t, tc.args...)
		if code != tc.code || !strings.Contains(strings.ToLower(stderr), tc.msg) {
			t.Errorf("mediafs %v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, stderr, tc.code, tc.msg)
		}
	}
}

func TestUnsupportedFileSystemsNamed(t *testing.T) {
	dir := t.TempDir()
	for name, patch := range map[string]func([]byte){
		"exFAT": func(b []byte) { copy(b[3:], "EXFAT   ") },
		"NTFS":  func(b []byte) { copy(b[3:], "NTFS    ") },
		"ext2/3/4": func(b []byte) {
			b[1024+56], b[1024+57] = 0x53, 0xEF
		},
	} {
		img := make([]byte, 1<<20)
		patch(img)
		p := filepath.Join(dir, "x.img")
		os.WriteFile(p, img, 0o644)
		_, stderr, code := mediafsRun(t, "info", p)
		if code != exitNoImage || !strings.Contains(stderr, name) {
			t.Errorf("%s image: exit %d, %q", name, code, stderr)
		}
	}
}

func TestISOCommands(t *testing.T) {
	src := makeSourceTree(t)
	img := makeISO(t, src, "-J", "-R")

	out, stderr, code := mediafsRun(t, "info", "--json", img)
	if code != 0 {
		t.Fatalf("info: %d %s", code, stderr)
	}
	var info map[string]any
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("info --json is not one JSON object: %v\n%s", err, out)
	}
	for k, want := range map[string]any{"fs": "iso9660", "rock_ridge": true, "joliet": true, "el_torito": false, "block_size": 2048.0, "sector_size": 2048.0} {
		if info[k] != want {
			t.Errorf("info %s = %v, want %v", k, info[k], want)
		}
	}
	if _, ok := info["warnings"].([]any); !ok {
		t.Errorf("info has no warnings list: %v", info["warnings"])
	}

	// ls -R --json lists exactly the source tree, sizes and types.
	out, stderr, code = mediafsRun(t, "ls", "-R", "--json", img)
	if code != 0 {
		t.Fatalf("ls: %d %s", code, stderr)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var e struct {
			Path, Type, Mode, MTime, Target string
			Size, Alloc                     int64
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("ls --json line %q: %v", line, err)
		}
		desc := fmt.Sprintf("%s %d %s", e.Type, e.Size, e.Mode)
		if e.Type == "symlink" {
			desc = "symlink " + e.Target
		}
		if e.Type == "file" {
			if e.Alloc != (e.Size+2047)/2048*2048 {
				t.Errorf("%s: alloc %d for size %d", e.Path, e.Alloc, e.Size)
			}
			if e.MTime != testTime.Format(time.RFC3339) {
				t.Errorf("%s: mtime %s, want %s", e.Path, e.MTime, testTime.Format(time.RFC3339))
			}
		}
		got[e.Path] = desc
	}
	want := map[string]string{}
	filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if p == src {
			return nil
		}
		rel := "/" + filepath.ToSlash(strings.TrimPrefix(p, src+"/"))
		fi, _ := os.Lstat(p)
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			tgt, _ := os.Readlink(p)
			want[rel] = "symlink " + tgt
		case fi.IsDir():
			want[rel] = fmt.Sprintf("dir %d %s", 2048, fi.Mode())
		default:
			want[rel] = fmt.Sprintf("file %d %s", fi.Size(), fi.Mode())
		}
		return nil
	})
	for p, w := range want {
		g := got[p]
		if strings.HasPrefix(w, "dir") { // directory sizes are the extent's
			if !strings.HasPrefix(g, "dir") {
				t.Errorf("%s: got %q, want a directory", p, g)
			}
			continue
		}
		if g != w {
			t.Errorf("%s: got %q, want %q", p, g, w)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("listed %s, which the source does not have (rr_moved must be hidden)", p)
		}
	}

	// The same names as bsdtar lists.
	if _, err := exec.LookPath("bsdtar"); err == nil {
		var names []string
		for _, l := range strings.Split(strings.TrimSpace(sh(t, "", "bsdtar", "-tf", img)), "\n") {
			l = strings.TrimSuffix(strings.TrimPrefix(l, "./"), "/")
			if l != "." && l != "" {
				names = append(names, "/"+l)
			}
		}
		var ours []string
		for p := range got {
			ours = append(ours, p)
		}
		sort.Strings(names)
		sort.Strings(ours)
		if fmt.Sprint(names) != fmt.Sprint(ours) {
			t.Errorf("listing differs from bsdtar's:\nbsdtar: %v\nmediafs: %v", names, ours)
		}
	}

	// cat yields the bytes; a missing path fails with exit 1.
	out, _, code = mediafsRun(t, "cat", img, "/data/big.bin")
	srcBytes, _ := os.ReadFile(filepath.Join(src, "data/big.bin"))
	if code != 0 || out != string(srcBytes) {
		t.Errorf("cat big.bin: exit %d, %d bytes (want %d)", code, len(out), len(srcBytes))
	}
	if _, stderr, code := mediafsRun(t, "cat", img, "nope.txt"); code != exitFailed || !strings.Contains(stderr, "nope.txt") {
		t.Errorf("cat of a missing path: exit %d, %q", code, stderr)
	}

	// extract restores files, modes, mtimes and the inside symlink, and
	// refuses the one that points outside.
	dest := filepath.Join(t.TempDir(), "out")
	_, stderr, code = mediafsRun(t, "extract", img, dest)
	if code != 0 {
		t.Fatalf("extract: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "outside-link") {
		t.Errorf("no warning about the symlink that leaves DEST: %q", stderr)
	}
	if _, err := os.Lstat(filepath.Join(dest, "docs/outside-link")); err == nil {
		t.Error("a symlink to /etc/passwd was extracted")
	}
	filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		rel := strings.TrimPrefix(p, src)
		q := filepath.Join(dest, rel)
		fi, _ := os.Lstat(p)
		qi, err := os.Lstat(q)
		if strings.HasSuffix(p, "outside-link") {
			return nil
		}
		if err != nil {
			t.Errorf("extract: %s missing: %v", rel, err)
			return nil
		}
		if fi.Mode() != qi.Mode() {
			t.Errorf("extract %s: mode %v, want %v", rel, qi.Mode(), fi.Mode())
		}
		if fi.Mode().IsRegular() {
			a, _ := os.ReadFile(p)
			b, _ := os.ReadFile(q)
			if !bytes.Equal(a, b) {
				t.Errorf("extract %s: content differs", rel)
			}
		}
		if fi.Mode()&fs.ModeSymlink == 0 && !qi.ModTime().Equal(fi.ModTime()) {
			t.Errorf("extract %s: mtime %v, want %v", rel, qi.ModTime(), fi.ModTime())
		}
		return nil
	})
	// Extracting a single path puts it at DEST directly.
	dest2 := t.TempDir()
	if _, stderr, code := mediafsRun(t, "extract", img, dest2, "/docs"); code != 0 {
		t.Fatalf("extract /docs: %d %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dest2, "A long Name with Spaces.md")); err != nil {
		t.Errorf("extract of a PATH does not put its contents at DEST: %v", err)
	}
}

// Extraction never writes through a symlink already in DEST.
func TestExtractDoesNotFollowExistingLinks(t *testing.T) {
	src := makeSourceTree(t)
	img := makeISO(t, src, "-R")
	dest := t.TempDir()
	victim := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(victim, []byte("untouched"), 0o644)
	os.Symlink(victim, filepath.Join(dest, "README.TXT"))
	os.MkdirAll(filepath.Join(t.TempDir(), "elsewhere"), 0o755)
	if _, stderr, code := mediafsRun(t, "extract", img, dest); code != 0 {
		t.Fatalf("extract: %d %s", code, stderr)
	}
	if b, _ := os.ReadFile(victim); string(b) != "untouched" {
		t.Fatal("extraction wrote through a symlink in DEST")
	}
	if fi, _ := os.Lstat(filepath.Join(dest, "README.TXT")); !fi.Mode().IsRegular() {
		t.Fatal("the symlink in the way was not replaced by the file")
	}
}

func TestElTorito(t *testing.T) {
	need(t, "genisoimage")
	src := t.TempDir()
	boot := bytes.Repeat([]byte("BOOTIMAGE!"), 700) // 7000 bytes, not a whole sector
	os.WriteFile(filepath.Join(src, "boot.img"), boot, 0o644)
	os.WriteFile(filepath.Join(src, "other.txt"), []byte("x"), 0o644)
	img := filepath.Join(t.TempDir(), "boot.iso")
	sh(t, src, "genisoimage", "-quiet", "-R", "-o", img, "-b", "boot.img", "-no-emul-boot", "-boot-load-size", "4", "-c", "boot.cat", ".")

	out, stderr, code := mediafsRun(t, "info", "--json", img)
	if code != 0 {
		t.Fatalf("info: %s", stderr)
	}
	var info struct {
		ElTorito bool `json:"el_torito"`
		Boot     []struct {
			Index       int
			Platform    string
			Emulation   string
			LoadSectors int `json:"load_sectors"`
			Size        int64
		}
	}
	json.Unmarshal([]byte(out), &info)
	if !info.ElTorito || len(info.Boot) != 1 || info.Boot[0].Emulation != "none" || info.Boot[0].LoadSectors != 4 || info.Boot[0].Platform != "x86" {
		t.Fatalf("boot catalog: %+v", info)
	}
	out, stderr, code = mediafsRun(t, "cat", "--boot", "1", img)
	if code != 0 || out != string(boot) {
		t.Fatalf("cat --boot 1: exit %d (%s), %d bytes, want the %d-byte boot file", code, stderr, len(out), len(boot))
	}
	dest := t.TempDir()
	if _, stderr, code := mediafsRun(t, "extract", "--boot", img, dest); code != 0 {
		t.Fatalf("extract --boot: %s", stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "boot-1.img")); !bytes.Equal(b, boot) {
		t.Fatal("extract --boot wrote the wrong bytes")
	}
	if _, _, code := mediafsRun(t, "cat", "--boot", "2", img); code != exitFailed {
		t.Fatalf("cat --boot 2 of a one-entry catalog: exit %d", code)
	}
	// The boot entry adds nothing to the tree; the files are listed.
	out, _, _ = mediafsRun(t, "ls", img)
	if strings.TrimSpace(out) != "boot.cat\nboot.img\nother.txt" {
		t.Fatalf("ls of the boot image: %q", out)
	}
}

func TestSampleImage(t *testing.T) {
	// The README's first command: the bundled sample extracts byte-exact.
	img := "../../testdata/sample.iso"
	if _, err := os.Stat(img); err != nil {
		t.Fatalf("the bundled sample is missing (testdata/make-sample.sh makes it): %v", err)
	}
	dest := t.TempDir()
	if _, stderr, code := mediafsRun(t, "extract", img, dest); code != 0 {
		t.Fatalf("extract sample: %d %s", code, stderr)
	}
	b, err := os.ReadFile(filepath.Join(dest, "data/odd-3000-bytes.bin"))
	if err != nil || len(b) != 3000 {
		t.Fatalf("sample odd-3000-bytes.bin: %d bytes, %v", len(b), err)
	}
	for i, c := range b {
		if c != byte(i%251) {
			t.Fatalf("sample odd-3000-bytes.bin: byte %d is %d", i, c)
		}
	}
	if tgt, err := os.Readlink(filepath.Join(dest, "src/latest")); err != nil || tgt != "hello" {
		t.Fatalf("sample symlink: %q %v", tgt, err)
	}
	out, _, _ := mediafsRun(t, "info", "--json", img)
	if !strings.Contains(out, `"block_size":512`) {
		t.Fatalf("sample is not a 512-block image: %s", out)
	}
}

// Review findings: usage errors exit 2; a directory that repeats a name
// keeps both entries reachable (and says so); DEST may be a symlink.
func TestReviewFindings(t *testing.T) {
	if _, _, code := mediafsRun(t); code != exitUsage {
		t.Errorf("bare mediafs: exit %d, want 2", code)
	}
	if _, _, code := mediafsRun(t, "ls", "--codepage", "99999", "../../testdata/sample.iso"); code != exitUsage {
		t.Errorf("unknown --codepage: exit %d, want 2", code)
	}

	need(t, "genisoimage")
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "AAA.TXT"), []byte("first\n"), 0o644)
	os.WriteFile(filepath.Join(src, "AAB.TXT"), []byte("second\n"), 0o644)
	img := filepath.Join(t.TempDir(), "dup.iso")
	sh(t, "", "genisoimage", "-quiet", "-o", img, src)
	raw, _ := os.ReadFile(img)
	i := bytes.Index(raw, []byte("AAB.TXT;1"))
	if i < 0 {
		t.Fatal("record AAB.TXT;1 not found")
	}
	raw[i+2] = 'A' // now two records named AAA.TXT;1
	os.WriteFile(img, raw, 0o644)
	out, stderr, code := mediafsRun(t, "ls", img)
	if code != 0 || out != "AAA.TXT\nAAA.TXT~2\n" || !strings.Contains(stderr, "repeats the name") {
		t.Fatalf("ls of a directory with a repeated name: exit %d, %q, %q", code, out, stderr)
	}
	a, _, _ := mediafsRun(t, "cat", img, "AAA.TXT")
	b, _, _ := mediafsRun(t, "cat", img, "AAA.TXT~2")
	if a+b != "first\nsecond\n" {
		t.Fatalf("contents %q %q", a, b)
	}

	real := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	os.Symlink(real, link)
	if _, stderr, code := mediafsRun(t, "extract", img, link); code != 0 {
		t.Fatalf("extract into a symlinked DEST: %s", stderr)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatal("the DEST symlink was replaced")
	}
	if _, err := os.Stat(filepath.Join(real, "AAA.TXT~2")); err != nil {
		t.Fatalf("not extracted through the DEST symlink: %v", err)
	}
}
