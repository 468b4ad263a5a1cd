package mediafs_test

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"testing"

	"github.com/mediafs/mediafs"
	"github.com/mediafs/mediafs/device"
	"github.com/mediafs/mediafs/iso9660/mkiso"
	"testing/fstest"
)

// The library's write side over an in-memory device: a fresh volume from
// Mkfs-equivalent Format, files written and read back, ISO refused.
func TestWritableDevice(t *testing.T) {
	dir := t.TempDir()
	img := dir + "/w.img"
	if err := mediafs.Mkfs(img, mediafs.MkfsOptions{Type: "fat16", Size: 16 << 20, SectorSize: 2048, Label: "LIB"}); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(img)
	mem := device.NewMemory(raw, 2048)
	w, err := mediafs.OpenWritableDevice(mem)
	if err != nil {
		t.Fatal(err)
	}
	f, err := w.OpenFile("Notes.txt", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(f, "first line\n")
	if _, err := w.OpenFile("NOTES.TXT", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("O_EXCL of a case variant: %v, want ErrExist", err)
	}
	f.Close()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := mediafs.OpenDevice(device.NewMemory(mem.Bytes(), 2048))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if b, err := fs.ReadFile(r, "notes.txt"); err != nil || string(b) != "first line\n" {
		t.Fatalf("read back: %q %v", b, err)
	}
	if in := r.Info(); in.Label != "LIB" || in.Dirty == nil || *in.Dirty {
		t.Fatalf("info after close: %+v", in)
	}

	var iso memWriter
	mkiso.Write(&iso, fstest.MapFS{"A": {Data: []byte("a")}}, mkiso.Options{})
	if _, err := mediafs.OpenWritableDevice(device.NewMemory(iso.b, 2048)); !errors.Is(err, mediafs.ErrReadOnlyFS) {
		t.Fatalf("ISO opened for writing: %v", err)
	}
}

// TestInfoFollowsWrites: Info's free space and dirty mark follow writes
// through a file opened before Info was asked (found in review: the
// statfs of a mount kept the free space of before such writes).
func TestInfoFollowsWrites(t *testing.T) {
	img := t.TempDir() + "/w.img"
	if err := mediafs.Mkfs(img, mediafs.MkfsOptions{Type: "fat16", Size: 16 << 20}); err != nil {
		t.Fatal(err)
	}
	w, err := mediafs.OpenWritable(img)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	f, err := w.OpenFile("log.bin", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	before := *w.Info().Free
	if _, err := f.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	if after := *w.Info().Free; before-after < 1<<20 {
		t.Errorf("free space %d before writing 1 MiB, %d after", before, after)
	}
	if err := f.Truncate(0); err != nil {
		t.Fatal(err)
	}
	if after := *w.Info().Free; after != before {
		t.Errorf("free space %d after truncating to 0, want %d", after, before)
	}
}
