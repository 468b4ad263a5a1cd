package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/mediafs/mediafs"
	"github.com/mediafs/mediafs/iso9660"
	"github.com/mediafs/mediafs/iso9660/mkiso"
)

// A rescued image whose ddrescue map says one sector in the middle of a
// file could not be read: extract --keep-going writes every other file
// whole, the damaged one with a hole of zeros exactly where the bad sector
// was, and --report says so; --no-partial drops the damaged file.
func TestExtractKeepGoingWithMap(t *testing.T) {
	dir := t.TempDir()
	big := bytes.Repeat([]byte("0123456789abcdef"), 200000) // 3.2 MB
	src := fstest.MapFS{
		"BIG.BIN":   {Data: big, Mode: 0o644},
		"OTHER.TXT": {Data: []byte("untouched\n"), Mode: 0o644},
		"SUB/B.TXT": {Data: []byte("also fine\n"), Mode: 0o644},
	}
	img := filepath.Join(dir, "rescued.iso")
	if _, err := mkiso.WriteFile(img, src, mkiso.Options{BlockSize: 2048}); err != nil {
		t.Fatal(err)
	}
	f, err := mediafs.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := fs.Stat(f, "BIG.BIN")
	start := fi.Sys().(*iso9660.Sys).Extents[0].Block * 2048
	f.Close()
	bad := start + 1<<20 // a sector 1 MiB into the file
	mapfile := filepath.Join(dir, "rescued.map")
	os.WriteFile(mapfile, []byte(fmt.Sprintf("# Mapfile\n0x0 +\n0x0 %#x +\n%#x 0x800 -\n%#x 0x40000000 +\n", bad, bad, bad+2048)), 0o644)

	dest := filepath.Join(dir, "out")
	report := filepath.Join(dir, "report.json")
	_, stderr, code := mediafsRun(t, "extract", "--keep-going", "--map", mapfile, "--report", report, img, dest)
	if code != exitFailed {
		t.Fatalf("extract --keep-going of a damaged image: exit %d, want 1: %s", code, stderr)
	}
	if !strings.Contains(stderr, fmt.Sprintf("read /BIG.BIN: sector %d: bad sector", bad/2048)) {
		t.Errorf("message does not name the file and the sector: %q", stderr)
	}
	for name, want := range map[string]string{"OTHER.TXT": "untouched\n", "SUB/B.TXT": "also fine\n"} {
		if b, err := os.ReadFile(filepath.Join(dest, name)); err != nil || string(b) != want {
			t.Errorf("%s: %q %v", name, b, err)
		}
	}
	got, err := os.ReadFile(filepath.Join(dest, "BIG.BIN"))
	if err != nil || len(got) != len(big) {
		t.Fatalf("damaged file: %d bytes, %v; want %d bytes with a hole", len(got), err, len(big))
	}
	hole := int(bad - start)
	if !bytes.Equal(got[:hole], big[:hole]) || !bytes.Equal(got[hole+2048:], big[hole+2048:]) || !bytes.Equal(got[hole:hole+2048], make([]byte, 2048)) {
		t.Fatal("damaged file: readable bytes differ, or the bad sector is not a hole of zeros")
	}
	var line struct {
		Path   string
		Error  string
		Ranges [][2]int64
	}
	rb, _ := os.ReadFile(report)
	if err := json.Unmarshal(bytes.TrimSpace(rb), &line); err != nil {
		t.Fatalf("report %q: %v", rb, err)
	}
	if line.Path != "/BIG.BIN" || !strings.Contains(line.Error, "bad sector") || len(line.Ranges) != 1 || line.Ranges[0] != [2]int64{int64(hole), 2048} {
		t.Fatalf("report: %+v", line)
	}

	dest2 := filepath.Join(dir, "out2")
	if _, _, code := mediafsRun(t, "extract", "--keep-going", "--no-partial", "--map", mapfile, img, dest2); code != exitFailed {
		t.Fatalf("--no-partial: exit %d", code)
	}
	if _, err := os.Stat(filepath.Join(dest2, "BIG.BIN")); err == nil {
		t.Error("--no-partial kept the damaged file")
	}
	if _, err := os.Stat(filepath.Join(dest2, "OTHER.TXT")); err != nil {
		t.Error("--no-partial lost an undamaged file")
	}
	// cat of the damaged file fails fast, naming the sector.
	if _, stderr, code := mediafsRun(t, "cat", "--map", mapfile, img, "BIG.BIN"); code != exitFailed || !strings.Contains(stderr, fmt.Sprintf("sector %d", bad/2048)) {
		t.Errorf("cat of a damaged file: exit %d %q", code, stderr)
	}
}
