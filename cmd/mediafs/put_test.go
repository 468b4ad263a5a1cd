package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestPutFailures: put reads the host tree ahead of the writer, so its
// failures must still come out in order and cost only what failed: a name
// FAT cannot hold fails that file (exit 1) and the rest is copied, a
// directory that cannot be made skips its contents with one error, not one
// per file, and what is not a regular file is skipped with a warning.
func TestPutFailures(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	big := bytes.Repeat([]byte("0123456789abcdef"), 300_000) // several read-ahead slabs
	files := map[string][]byte{
		"good.txt":           []byte("good"),
		"bad|name.txt":       []byte("refused"),
		"big/large.bin":      big,
		"bad|dir/a.txt":      []byte("a"),
		"bad|dir/b.txt":      []byte("b"),
		"bad|dir/sub/c.txt":  []byte("c"),
		"zlast/after.txt":    []byte("after the failures"),
		"zlast/deep/end.txt": []byte("end"),
	}
	for name, data := range files {
		p := filepath.Join(src, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(src, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "put.img")
	mustRun(t, "mkfs", "--type", "fat16", "--size", "32M", img)
	_, stderr, code := mediafsRun(t, "put", "-r", img, src, "/")
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr)
	}
	if n := strings.Count(stderr, "bad|dir"); n != 1 {
		t.Errorf("%d messages about bad|dir, want 1 (its contents skipped quietly):\n%s", n, stderr)
	}
	if !strings.Contains(stderr, "bad|name.txt") || !strings.Contains(stderr, "fifo is not a regular file") {
		t.Errorf("stderr does not name the refused file and the fifo:\n%s", stderr)
	}
	for name, data := range files {
		got, _, code := mediafsRun(t, "cat", img, "/src/"+name)
		refused := strings.HasPrefix(name, "bad|")
		if refused != (code != 0) || !refused && got != string(data) {
			t.Errorf("%s: exit %d, %d bytes (want %d)", name, code, len(got), len(data))
		}
	}
	fsckClean(t, img, 0, 0)
}

// TestPutStopsReadingRefusedFile: a large host file whose copy the image
// refuses (here its name) is not read to its end (found in review: the
// reader read all of it, only for the writer to drop it).
func TestPutStopsReadingRefusedFile(t *testing.T) {
	rchar := func() int64 {
		b, err := os.ReadFile("/proc/self/io")
		if err != nil {
			t.Skip("no /proc/self/io")
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "rchar: "); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				return n
			}
		}
		t.Skip("no rchar in /proc/self/io")
		return 0
	}
	src := filepath.Join(t.TempDir(), "bad|big.bin")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(256 << 20) // sparse: cheap to make, as costly to read
	f.Close()
	img := filepath.Join(t.TempDir(), "put.img")
	mustRun(t, "mkfs", "--type", "fat16", "--size", "32M", img)
	before := rchar()
	if _, stderr, code := mediafsRun(t, "put", img, src, "/"); code != 1 || !strings.Contains(stderr, "bad|big.bin") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if read := rchar() - before; read > 64<<20 {
		t.Errorf("read %d MiB of a 256 MiB file the image refused", read>>20)
	}
}
