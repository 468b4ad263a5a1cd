package fuse

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mediafs/mediafs"
	"github.com/mediafs/mediafs/iso9660/mkiso"
)

// TestMain doubles as the mmap helper: reading a FUSE file through mmap
// must happen in another process, since a page fault blocks its thread
// in the kernel, where the Go runtime cannot stop it for a garbage
// collection while the same process's FUSE server is stopped for it.
func TestMain(m *testing.M) {
	if os.Getenv("MEDIAFS_FUSE_HELPER") == "mmap" {
		os.Exit(mmapHelper(os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

// mmapHelper maps every file named on a line of in, and prints for each
// "sha256 tail-ok path": the digest of its bytes, and whether the rest of
// its last page reads as zeros.
func mmapHelper(in io.Reader, out io.Writer) int {
	sc := bufio.NewScanner(in)
	page := os.Getpagesize()
	for sc.Scan() {
		p := sc.Text()
		f, err := os.Open(p)
		if err != nil {
			fmt.Fprintf(out, "error %v %s\n", err, p)
			continue
		}
		fi, err := f.Stat()
		if err != nil || fi.Size() == 0 {
			sum := sha256.Sum256(nil)
			fmt.Fprintf(out, "%s true %s\n", hex.EncodeToString(sum[:]), p)
			f.Close()
			continue
		}
		n := int((fi.Size() + int64(page) - 1) / int64(page) * int64(page))
		b, err := unix.Mmap(int(f.Fd()), 0, n, unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			fmt.Fprintf(out, "error %v %s\n", err, p)
			f.Close()
			continue
		}
		sum := sha256.Sum256(b[:fi.Size()])
		tail := !bytes.ContainsFunc(b[fi.Size():], func(r rune) bool { return r != 0 })
		fmt.Fprintf(out, "%s %v %s\n", hex.EncodeToString(sum[:]), tail, p)
		unix.Munmap(b)
		f.Close()
	}
	return 0
}

// needFUSE skips the test when FUSE mounts are impossible here.
func needFUSE(t *testing.T) {
	t.Helper()
	if err := checkFUSE(); err != nil {
		t.Skipf("no FUSE here (CI installs fuse3 and runs with /dev/fuse): %v", err)
	}
}

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (CI installs it): %v", tool, err)
		}
	}
}

// run runs a command (never with its working directory in a mount: the
// child's chdir would be served by this process while it forks).
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1", "LC_ALL=C.UTF-8")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// mountFS mounts fsys on a new directory and unmounts it (and closes fsys)
// when the test ends.
func mountFS(t *testing.T, fsys mediafs.FS, o Options) (string, *Server) {
	t.Helper()
	needFUSE(t)
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	srv, err := Mount(dir, fsys, o)
	if err != nil {
		fsys.Close()
		t.Fatalf("Mount: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Unmount(); err != nil {
			t.Errorf("Unmount: %v", err)
		}
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		fsys.Close()
		if mounted(dir) {
			t.Errorf("%s is still mounted", dir)
		}
	})
	return dir, srv
}

// mounted reports whether dir is a mount point (per /proc/self/mountinfo).
func mounted(dir string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}

// unmountAndClose ends a mount made by mountFS now (the cleanup then has
// nothing left to do).
func unmountAndClose(t *testing.T, srv *Server) {
	t.Helper()
	if err := srv.Unmount(); err != nil {
		t.Fatalf("Unmount: %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// payload returns n bytes that differ from every other seed's.
func payload(seed, n int) []byte {
	b := make([]byte, n)
	x := uint32(seed*2654435761 + 1)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// testTime is the source tree's modification time: whole even seconds,
// which FAT keeps exactly.
var testTime = time.Date(2021, 3, 4, 5, 6, 8, 0, time.UTC)

// sourceFiles is the test tree: sizes around page and cluster edges, long
// and non-ASCII names, nesting and an empty file.
func sourceFiles() map[string][]byte {
	m := map[string][]byte{
		"README.TXT":                      []byte("read me\n"),
		"docs/A long Name with Spaces.md": bytes.Repeat([]byte("long name\n"), 300),
		"docs/empty":                      nil,
		"deep/a/b/c/d/leaf.txt":           []byte("five levels down\n"),
		"Ünïcödé ñame.txt":                []byte("unicode\n"),
	}
	for i, n := range []int{1, 511, 512, 2047, 2048, 2049, 4095, 4096, 4097, 70000, 1<<20 + 123} {
		m[fmt.Sprintf("data/f%07d.bin", n)] = payload(i, n)
	}
	return m
}

// writeTree writes files (and symbolic links, when links) under a new
// directory.
func writeTree(t *testing.T, files map[string][]byte, links bool) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "src")
	for name, data := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if links {
		os.Symlink("../README.TXT", filepath.Join(root, "docs/readme-link"))
		os.Symlink("/etc/passwd", filepath.Join(root, "docs/outside-link"))
	}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type()&fs.ModeSymlink == 0 {
			os.Chtimes(p, testTime, testTime)
		}
		return nil
	})
	return root
}

// buildFAT makes a FAT image of src with mediafs's own writer. One file is
// written in two parts with another file in between, so that its clusters
// are not contiguous.
func buildFAT(t *testing.T, typ string, size int64, src string) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), typ+".img")
	if err := mediafs.Mkfs(img, mediafs.MkfsOptions{Type: typ, Size: size, Label: "TEST"}); err != nil {
		t.Fatal(err)
	}
	w, err := mediafs.OpenWritable(img)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			return w.Mkdir(rel, 0o755)
		}
		if d.Type().IsRegular() {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	var pending mediafs.File // written in part; the rest follows the next file
	var rest []byte
	split := false
	for _, rel := range files {
		data, err := os.ReadFile(filepath.Join(src, rel))
		if err != nil {
			t.Fatal(err)
		}
		f, err := w.OpenFile(rel, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if !split && len(data) > 200000 {
			split = true
			if _, err := f.Write(data[:len(data)/2]); err != nil {
				t.Fatal(err)
			}
			pending, rest = f, data[len(data)/2:]
			continue
		}
		if _, err := f.Write(data); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if pending != nil {
			if _, err := pending.Write(rest); err != nil {
				t.Fatal(err)
			}
			pending.Close()
			pending = nil
		}
	}
	if pending != nil {
		if _, err := pending.Write(rest); err != nil {
			t.Fatal(err)
		}
		pending.Close()
	}
	// Times last: writing into a directory changes nothing of its entry,
	// but be safe.
	filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(src, p)
		if rel != "." && d.Type()&fs.ModeSymlink == 0 {
			w.Chtimes(filepath.ToSlash(rel), testTime, testTime)
		}
		return nil
	})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return img
}

// buildISO makes an ISO 9660 image of src with mkiso.
func buildISO(t *testing.T, src string, opts mkiso.Options) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), fmt.Sprintf("lbs%d.iso", opts.BlockSize))
	if _, err := mkiso.WriteFile(img, os.DirFS(src), opts); err != nil {
		t.Fatalf("mkiso: %v", err)
	}
	return img
}

// openRO opens an image read-only.
func openRO(t *testing.T, img string, opts ...mediafs.Option) mediafs.FS {
	t.Helper()
	f, err := mediafs.Open(img, opts...)
	if err != nil {
		t.Fatalf("open %s: %v", img, err)
	}
	return f
}

// diffTrees runs diff -r (the real tool) between the source and the mount.
func diffTrees(t *testing.T, src, mnt string) {
	t.Helper()
	need(t, "diff")
	cmd := exec.Command("diff", "-r", "--no-dereference", src, mnt)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("diff -r %s %s: %v\n%s", src, mnt, err, out)
	}
}

// regularFiles lists the regular files under root, relative, sorted.
func regularFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// mmapCompare maps every regular file of src's tree in mnt from a helper
// process and compares the bytes, and the zeros after the end of each
// file's last page.
func mmapCompare(t *testing.T, src, mnt string) {
	t.Helper()
	files := regularFiles(t, src)
	var in bytes.Buffer
	for _, f := range files {
		fmt.Fprintln(&in, filepath.Join(mnt, f))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), "MEDIAFS_FUSE_HELPER=mmap", "GORACE=atexit_sleep_ms=0")
	cmd.Stdin = &in
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("mmap helper: %v", err)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.SplitN(line, " ", 3)
		if len(f) != 3 {
			t.Fatalf("mmap helper said %q", line)
		}
		if f[0] == "error" {
			t.Errorf("mmap %s", line)
			continue
		}
		if f[1] != "true" {
			t.Errorf("mmap %s: the last page is not zero past the end of the file", f[2])
		}
		got[f[2]] = f[0]
	}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if g := got[filepath.Join(mnt, f)]; g != hex.EncodeToString(sum[:]) {
			t.Errorf("mmap %s: sha256 %s, want %x", f, g, sum)
		}
	}
}

// errnoOf extracts the errno of an os error.
func errnoOf(err error) syscall.Errno {
	var en syscall.Errno
	if errors.As(err, &en) {
		return en
	}
	return 0
}

// nodeAt is the node the kernel knows at path p of the mount.
func nodeAt(t *testing.T, srv *Server, p string) *node {
	t.Helper()
	srv.m.inos.mu.Lock()
	defer srv.m.inos.mu.Unlock()
	for _, id := range srv.m.inos.byIno {
		if id.owner != nil && id.owner.path() == p {
			return id.owner
		}
	}
	t.Fatalf("no node for %s", p)
	return nil
}
