package device

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestFaultyReads(t *testing.T) {
	f := NewFaulty(NewMemory(pattern(512*16), 512))
	f.FailReads(5*512+100, 10) // one byte range inside sector 5 makes all of it bad
	buf := make([]byte, 512*8)
	n, err := f.ReadAt(buf, 2*512)
	var se *SectorError
	if !errors.As(err, &se) || se.Sector != 5 || !errors.Is(err, ErrBadSector) {
		t.Fatalf("read across a bad sector: %v, want sector 5", err)
	}
	if n != 3*512 || string(buf[:n]) != string(pattern(512 * 16)[1024:1024+n]) {
		t.Fatalf("read returned %d good bytes before the bad sector, want 1536", n)
	}
	if !strings.Contains(err.Error(), "sector 5: bad sector") {
		t.Fatalf("message %q", err)
	}
	if _, err := f.ReadAt(buf[:512], 6*512); err != nil {
		t.Fatalf("sector next to the bad one: %v", err)
	}
	f.Heal()
	if _, err := f.ReadAt(buf, 2*512); err != nil {
		t.Fatal(err)
	}
}

func TestFaultyDropWrites(t *testing.T) {
	m := NewMemory(make([]byte, 512*4), 512)
	f := NewFaulty(m)
	f.DropWritesAfter(1)
	one := []byte(strings.Repeat("x", 512))
	f.WriteAt(one, 0)
	f.WriteAt(one, 512)
	if m.Bytes()[0] != 'x' || m.Bytes()[512] != 0 {
		t.Fatal("only the first write should have reached the medium")
	}
}

func TestTimeout(t *testing.T) {
	fd := NewFaulty(NewMemory(make([]byte, 4096), 512))
	fd.Block()
	d := NewTimeout(fd, 50*time.Millisecond)
	start := time.Now()
	_, err := d.ReadAt(make([]byte, 512), 0)
	if !errors.Is(err, ErrTimeout) || time.Since(start) > 5*time.Second {
		t.Fatalf("read from a hung drive: %v after %v", err, time.Since(start))
	}
	if d.Abandoned() != 1 || !d.Failed() {
		t.Fatalf("abandoned %d, failed %v", d.Abandoned(), d.Failed())
	}
	// Later requests fail at once instead of piling up.
	start = time.Now()
	if _, err := d.ReadAt(make([]byte, 512), 512); !errors.Is(err, ErrTimeout) || time.Since(start) > 40*time.Millisecond {
		t.Fatalf("second read: %v after %v", err, time.Since(start))
	}
	fd.Unblock() // lets the abandoned goroutine finish
}

func TestParseMapfile(t *testing.T) {
	good := `# Mapfile. Created by GNU ddrescue version 1.27
# Command line: ddrescue /dev/sdb sdb.img sdb.map
# Start time:   2026-01-02 10:00:00
# current_pos  current_status  current_pass
0x00020000     +               1
#      pos        size  status
0x00000000  0x00010000  +
0x00010000  0x00000200  -
0x00010200  0x00000400  /
0x00010600  0x0000FA00  +
0x00020000  0x00001000  ?
`
	m, err := ParseMapfile(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	bad := m.Bad()
	if len(bad) != 2 || bad[0] != (Range{0x10000, 0x600}) || bad[1] != (Range{0x20000, 0x1000}) {
		t.Fatalf("bad ranges %v", bad)
	}
	d := NewMapped(NewMemory(make([]byte, 0x30000), 512), m)
	if _, err := d.ReadAt(make([]byte, 512), 0x10000+512); !errors.Is(err, ErrBadSector) {
		t.Fatalf("non-scraped area readable: %v", err)
	}
	if _, err := d.ReadAt(make([]byte, 512), 0x21000); !errors.Is(err, ErrBadSector) {
		t.Fatal("area the map does not cover is readable")
	}
	if _, err := d.ReadAt(make([]byte, 512), 0x10600); err != nil {
		t.Fatalf("finished area: %v", err)
	}
	for name, bad := range map[string]string{
		"no position line": "# only comments\n",
		"bad status":       "0 +\n0x0 0x200 X\n",
		"overlap":          "0 +\n0x0 0x400 +\n0x200 0x200 -\n",
		"bad number":       "0 +\n0xZZ 0x200 +\n",
		"zero size":        "0 +\n0x0 0x0 +\n",
		"short line":       "0 +\n0x0 0x200\n",
	} {
		if _, err := ParseMapfile(strings.NewReader(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		} else if name != "no position line" && !strings.Contains(err.Error(), "line ") {
			t.Errorf("%s: error %q does not name the line", name, err)
		}
	}
}
