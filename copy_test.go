package mediafs_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/mediafs/mediafs"
	"github.com/mediafs/mediafs/device"
	"github.com/mediafs/mediafs/iso9660"
	"github.com/mediafs/mediafs/iso9660/mkiso"
)

func TestCopyTo(t *testing.T) {
	dir := t.TempDir()
	data := payload(42, 3*1<<20+777)
	src := fstest.MapFS{"DATA.BIN": {Data: data, Mode: 0o644}, "SMALL.TXT": {Data: []byte("x"), Mode: 0o644}}
	img := filepath.Join(dir, "img.iso")
	if _, err := mkiso.WriteFile(img, src, mkiso.Options{BlockSize: 512}); err != nil {
		t.Fatal(err)
	}
	copyOut := func(f mediafs.FS, name string) ([]byte, error) {
		file, err := f.Open(name)
		if err != nil {
			return nil, err
		}
		defer file.Close()
		fi, _ := file.Stat()
		out, _ := os.Create(filepath.Join(dir, "out"))
		defer out.Close()
		var reported int64
		n, err := mediafs.CopyTo(out, f, file, fi.Size(), make([]byte, 64<<10), func(k int64) { reported += k })
		if reported != n {
			return nil, fmt.Errorf("progress reported %d bytes, copied %d", reported, n)
		}
		b, _ := os.ReadFile(out.Name())
		return b, err
	}

	// A plain image file: copied in the kernel, byte-exact.
	f, err := mediafs.Open(img, mediafs.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	got, err := copyOut(f, "DATA.BIN")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("plain image: %v, equal %v", err, bytes.Equal(got, data))
	}
	fi, _ := fs.Stat(f, "DATA.BIN")
	first := fi.Sys().(*iso9660.Sys).Extents[0].Block * 512
	f.Close()

	// The same image with a ddrescue map that marks one sector in the
	// middle of the file bad: the copy stops there with an error naming
	// the file and the sector, and everything before it was written.
	bad := (first + 1<<20) / 2048 * 2048
	m, err := device.ParseMapfile(strings.NewReader(fmt.Sprintf("0 +\n0 %#x +\n%#x 0x800 -\n%#x 0x10000000 +\n", bad, bad, bad+2048)))
	if err != nil {
		t.Fatal(err)
	}
	f, err = mediafs.Open(img, mediafs.ReadOnly(), mediafs.WithMapfile(m))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err = copyOut(f, "DATA.BIN")
	var se *device.SectorError
	if !errors.As(err, &se) || se.Sector != bad/2048 || !errors.Is(err, device.ErrBadSector) || !strings.Contains(err.Error(), "/DATA.BIN") {
		t.Fatalf("copy across a mapped-bad sector: %v", err)
	}
	if int64(len(got)) > bad-first || !bytes.Equal(got, data[:len(got)]) {
		t.Fatalf("copied %d bytes before the bad sector at file offset %d", len(got), bad-first)
	}
	// Files the bad sector does not touch still copy.
	if got, err := copyOut(f, "SMALL.TXT"); err != nil || string(got) != "x" {
		t.Fatalf("unrelated file: %q %v", got, err)
	}
	if cs, ok := f.(mediafs.CacheStatser); ok && cs.CacheStats().Pins != 0 {
		t.Fatalf("pins left: %+v", cs.CacheStats())
	}
}

// wholeFail fails every request that touches its bad sector as a whole,
// returning no bytes, as a pread of a real disk does.
type wholeFail struct {
	device.Device
	bad int64 // byte offset of a bad 2048-byte sector
}

func (w wholeFail) ReadAt(p []byte, off int64) (int, error) {
	if off <= w.bad && w.bad < off+int64(len(p)) {
		return 0, &device.SectorError{Op: "read", Sector: w.bad / 2048, Err: device.ErrBadSector}
	}
	return w.Device.ReadAt(p, off)
}

func TestSalvageAroundWholeRequestFailures(t *testing.T) {
	data := payload(7, 5<<20+1234)
	var w memWriter
	if _, err := mkiso.Write(&w, fstest.MapFS{"F.BIN": {Data: data, Mode: 0o644}}, mkiso.Options{BlockSize: 512}); err != nil {
		t.Fatal(err)
	}
	probe, _ := mediafs.OpenDevice(device.NewMemory(w.b, 2048))
	fi, _ := fs.Stat(probe, "F.BIN")
	start := fi.Sys().(*iso9660.Sys).Extents[0].Block * 512
	probe.Close()
	bad := (start+3<<20)/2048*2048 + 2048
	f, err := mediafs.OpenDevice(wholeFail{device.NewMemory(w.b, 2048), bad})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	file, _ := f.Open("F.BIN")
	defer file.Close()
	out, _ := os.Create(filepath.Join(t.TempDir(), "out"))
	defer out.Close()
	lost, err := mediafs.Salvage(out, file, int64(len(data)), nil, nil)
	if !errors.Is(err, device.ErrBadSector) {
		t.Fatalf("Salvage: %v", err)
	}
	hole := bad - start
	if len(lost) != 1 || lost[0] != (device.Range{Off: hole, Len: 2048}) {
		t.Fatalf("lost %v, want [%d +2048]", lost, hole)
	}
	got, _ := os.ReadFile(out.Name())
	want := bytes.Clone(data)
	clear(want[hole : hole+2048])
	if !bytes.Equal(got, want) {
		t.Fatal("salvaged bytes differ outside the bad sector")
	}
}

// A directory whose sector could not be read is not remembered as broken:
// once the medium delivers the sector (a retry, a better drive), it lists.
func TestDirectoryReadAgainAfterMediaError(t *testing.T) {
	var w memWriter
	src := fstest.MapFS{"SUB/A.TXT": {Data: []byte("a")}, "SUB/B.TXT": {Data: []byte("b")}, "TOP.TXT": {Data: []byte("t")}}
	if _, err := mkiso.Write(&w, src, mkiso.Options{BlockSize: 2048}); err != nil {
		t.Fatal(err)
	}
	probe, _ := mediafs.OpenDevice(device.NewMemory(bytes.Clone(w.b), 2048))
	fi, _ := fs.Stat(probe, "SUB")
	sub := fi.Sys().(*iso9660.Sys).Extents[0].Block
	probe.Close()
	faulty := device.NewFaulty(device.NewMemory(w.b, 2048))
	f, err := mediafs.OpenDevice(faulty)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	faulty.FailSectors(sub, 1)
	if _, err := f.ReadDir("SUB"); !errors.Is(err, device.ErrBadSector) || !strings.Contains(err.Error(), fmt.Sprintf("sector %d", sub)) {
		t.Fatalf("ReadDir over a bad sector: %v", err)
	}
	if b, err := fs.ReadFile(f, "TOP.TXT"); err != nil || string(b) != "t" {
		t.Fatalf("an unrelated file: %q %v", b, err)
	}
	faulty.Heal()
	ents, err := f.ReadDir("SUB")
	if err != nil || len(ents) != 2 {
		t.Fatalf("after the sector healed: %d entries, %v", len(ents), err)
	}
	if cs, ok := f.(mediafs.CacheStatser); ok && cs.CacheStats().Pins != 0 {
		t.Fatalf("pins left: %+v", cs.CacheStats())
	}
}
