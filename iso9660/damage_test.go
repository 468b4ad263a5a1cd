package iso9660

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mediafs/mediafs/device"
)

// ptExtent finds a first-level directory's extent in the type L path table
// the test builder writes at block 18 (ECMA-119 9.4: name length, XAR
// length, extent, parent, name), independently of the driver.
func ptExtent(t *testing.T, img []byte, name string) int64 {
	t.Helper()
	pt := img[18*sectorSize : 19*sectorSize]
	for pos := 0; pos+8 <= len(pt) && pt[pos] != 0; {
		n := int(pt[pos])
		if string(pt[pos+8:pos+8+n]) == name {
			return int64(binary.LittleEndian.Uint32(pt[pos+2:]))
		}
		pos += 8 + n + n%2
	}
	t.Fatalf("%s is not in the path table", name)
	return 0
}

// A directory with an unreadable sector lists the records of its other
// sectors, with an error naming the directory and the sector; names in the
// readable sectors can be opened; the damaged listing is not cached, so
// that once the sector reads again the whole directory is back.
func TestDirectorySalvage(t *testing.T) {
	var files []tFile
	for i := range 150 {
		files = append(files, tFile{name: fmt.Sprintf("FILENAME_%03d.TXT", i), data: fmt.Appendf(nil, "content %d\n", i)})
	}
	img, _ := tImage{files: []tFile{{name: "D", dir: true, children: files}}}.build()
	ext := ptExtent(t, img, "D")
	bad := ext + 1 // the directory's second sector

	// Which names sit in the bad sector, from the raw records.
	want := map[string]bool{}
	var lost, kept []string
	for _, f := range files {
		at := bytes.Index(img, []byte(f.name+";1"))
		if at < 0 {
			t.Fatalf("record of %s not found", f.name)
		}
		if int64(at)/sectorSize == bad {
			lost = append(lost, f.name)
		} else {
			want[f.name] = true
			kept = append(kept, f.name)
		}
	}
	if len(lost) == 0 || len(kept) == 0 {
		t.Fatalf("the directory does not span the bad sector: %d lost, %d kept", len(lost), len(kept))
	}

	fd := device.NewFaulty(device.NewMemory(img, sectorSize))
	fd.FailReads(bad*sectorSize, sectorSize)
	f, err := Open(fd, Options{})
	if err != nil {
		t.Fatal(err)
	}
	check := func(ents []fs.DirEntry, err error, how string) {
		t.Helper()
		var got []string
		for _, e := range ents {
			got = append(got, e.Name())
		}
		var wantNames []string
		for n := range want {
			wantNames = append(wantNames, n)
		}
		sort.Strings(got)
		sort.Strings(wantNames)
		if !slices.Equal(got, wantNames) {
			t.Errorf("%s: %d entries, want the %d of the readable sectors", how, len(got), len(wantNames))
		}
		var dd *DirDamageError
		if !errors.Is(err, device.ErrBadSector) || !errors.As(err, &dd) {
			t.Fatalf("%s: error %v, want a DirDamageError matching ErrBadSector", how, err)
		}
		if !slices.Equal(dd.Sectors, []int64{bad}) || !slices.Equal(dd.Lost, []device.Range{{Off: sectorSize, Len: sectorSize}}) {
			t.Errorf("%s: damage %+v, want sector %d, directory bytes [2048, +2048)", how, dd, bad)
		}
		if msg := err.Error(); !strings.Contains(msg, "/D") || !strings.Contains(msg, fmt.Sprintf("sector %d: bad sector", bad)) {
			t.Errorf("%s: message %q does not name the directory and the sector", how, msg)
		}
	}
	ents, err := f.ReadDir("D")
	check(ents, err, "ReadDir")

	// Through an open directory, in small reads: the entries, then the error.
	d, err := f.Open("D")
	if err != nil {
		t.Fatal(err)
	}
	var all []fs.DirEntry
	var last error
	for range 1000 {
		part, err := d.(fs.ReadDirFile).ReadDir(7)
		all = append(all, part...)
		if err != nil {
			last = err
			break
		}
	}
	check(all, last, "Open+ReadDir(7)")
	if _, err := d.(fs.ReadDirFile).ReadDir(7); err != io.EOF {
		t.Errorf("ReadDir after the error = %v, want io.EOF", err)
	}
	d.Close()

	// A name in a readable sector opens and reads; one in the bad sector
	// fails with the damage, not as missing.
	got, err := readAll(f, "D/"+kept[len(kept)-1])
	if err != nil || !strings.HasPrefix(string(got), "content ") {
		t.Errorf("reading a file of a readable sector: %q %v", got, err)
	}
	if _, err := f.Stat("D/" + lost[0]); !errors.Is(err, device.ErrBadSector) || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat of a name in the bad sector: %v, want the bad sector", err)
	}
	// Looking up the readable entries one by one does not ask for the bad
	// sector again (found in review: each lookup re-read the directory,
	// bad sector included: one slow failure per file extracted).
	_, _, failed := fd.Counts()
	for _, name := range kept {
		if _, err := f.Stat("D/" + name); err != nil {
			t.Errorf("Stat of %s: %v", name, err)
		}
	}
	if _, _, now := fd.Counts(); now != failed {
		t.Errorf("%d lookups made %d more failed reads of the bad sector", len(kept), now-failed)
	}
	checkNoPins(t, f)

	// Healed: the full listing, no error.
	fd.Heal()
	ents, err = f.ReadDir("D")
	if err != nil || len(ents) != len(files) {
		t.Errorf("after healing: %d entries, %v; want %d", len(ents), err, len(files))
	}
	if _, err := f.Stat("D/" + lost[0]); err != nil {
		t.Errorf("after healing: %v", err)
	}
	checkNoPins(t, f)
}

// A multi-extent file whose later section records sat in the unreadable
// sector is reported as damaged, not as corrupt.
func TestDirectorySalvageMultiExtent(t *testing.T) {
	var files []tFile
	// 42 records of 46 bytes after "." and ".." leave room in the first
	// sector for MULTI.BIN's first record (44 bytes), not its others.
	for i := range 42 {
		files = append(files, tFile{name: fmt.Sprintf("PAD_%03d.TXT", i), data: []byte("x")})
	}
	files = append(files, tFile{name: "MULTI.BIN", data: bytes.Repeat([]byte("m"), 3*sectorSize), sections: []int{sectorSize, sectorSize}})
	img, _ := tImage{files: []tFile{{name: "D", dir: true, children: files}}}.build()
	ext := ptExtent(t, img, "D")
	// The sector of MULTI.BIN's last record.
	at := int64(bytes.LastIndex(img, []byte("MULTI.BIN;1")))
	bad := at / sectorSize
	if bad == ext || int64(bytes.Index(img, []byte("MULTI.BIN;1")))/sectorSize == bad {
		t.Skip("the builder put all of MULTI.BIN's records in one sector")
	}
	fd := device.NewFaulty(device.NewMemory(img, sectorSize))
	fd.FailReads(bad*sectorSize, sectorSize)
	f, err := Open(fd, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.ReadDir("D")
	if !errors.Is(err, device.ErrBadSector) {
		t.Errorf("ReadDir: %v", err)
	}
	if _, err := f.Open("D/MULTI.BIN"); err == nil || errors.Is(err, ErrCorrupt) || !errors.Is(err, device.ErrBadSector) {
		t.Errorf("Open of the split multi-extent file: %v, want the bad sector", err)
	}
}

// Damage on an image from the test builder: the expectations come from
// where the builder put things (extents, the path table), not from the
// driver.
func TestDamageBuilderImage(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789"), 1500) // 15000 bytes: 8 sectors
	multi := bytes.Repeat([]byte("M"), 5000)
	var dfiles []tFile
	for i := range 100 {
		dfiles = append(dfiles, tFile{name: fmt.Sprintf("ENTRY_%03d.TXT", i), data: []byte("e")})
	}
	img, lay := tImage{files: []tFile{
		{name: "BIG.BIN", data: big},
		{name: "MULTI.BIN", data: multi, sections: []int{2048}},
		{name: "SMALL.TXT", data: []byte("small")},
		{name: "D", dir: true, children: dfiles},
	}}.build()
	dExt := ptExtent(t, img, "D")
	bigExt := lay["BIG.BIN"].extents[0].Block
	multiExt := lay["MULTI.BIN"].extents // a hole between the two sections
	// Bad: BIG.BIN's third sector and half of its fourth (rounded out to
	// the whole sector); MULTI.BIN's second section; D's second sector;
	// the path table (block 18); the terminator (sector 17).
	bad := []device.Range{
		{Off: (bigExt + 2) * sectorSize, Len: sectorSize + 1000},
		{Off: multiExt[1].Block * sectorSize, Len: sectorSize},
		{Off: (dExt + 1) * sectorSize, Len: sectorSize},
		{Off: 18 * sectorSize, Len: sectorSize},
		{Off: 17 * sectorSize, Len: 512},
	}
	fd := device.NewFaulty(device.NewMemory(img, sectorSize))
	for _, b := range bad {
		fd.FailReads(b.Off, b.Len)
	}
	f, err := Open(fd, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, warn := f.Damage(bad)
	if len(warn) != 0 {
		t.Errorf("warnings: %v", warn)
	}
	dLen := int64(binary.LittleEndian.Uint32(img[dExt*sectorSize+10:])) // the "." record's data length
	ptLen := int64(binary.LittleEndian.Uint32(img[16*sectorSize+132:]))
	want := []Damage{
		{Path: "<volume descriptor at sector 17>", Kind: "metadata", Size: sectorSize, Ranges: []device.Range{{Off: 17 * sectorSize, Len: sectorSize}}},
		{Path: "<L path table>", Kind: "metadata", Size: ptLen, Ranges: []device.Range{{Off: 18 * sectorSize, Len: ptLen}}},
		{Path: "/BIG.BIN", Kind: "file", Size: int64(len(big)), Ranges: []device.Range{{Off: 2 * sectorSize, Len: 2 * sectorSize}}},
		{Path: "/D", Kind: "dir", Size: dLen, Ranges: []device.Range{{Off: sectorSize, Len: sectorSize}}, LostSectors: 1, LostEntries: sectorSize / 34},
		{Path: "/MULTI.BIN", Kind: "file", Size: int64(len(multi)), Ranges: []device.Range{{Off: 2048, Len: 2048}}},
	}
	for i := range got {
		got[i].Note = ""
	}
	sort.Slice(got, func(i, j int) bool { return got[i].Path < got[j].Path })
	sort.Slice(want, func(i, j int) bool { return want[i].Path < want[j].Path })
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Damage:\n got %+v\nwant %+v", got, want)
	}
	checkNoPins(t, f)
}

// A hostile image whose interleaved files claim 4 GiB each in units of one
// 512-byte block: the damage walk stops at its budget, with a warning,
// instead of mapping billions of units.
func TestDamageBounded(t *testing.T) {
	var files []tFile
	for i := range 200 {
		files = append(files, tFile{name: fmt.Sprintf("I%03d.BIN", i), data: make([]byte, 1024), unit: 1, gap: 1})
	}
	img, _ := tImage{lbs: 512, files: files}.build()
	for i := range 200 {
		at := bytes.Index(img, fmt.Appendf(nil, "I%03d.BIN;1", i)) - 33
		if at < 0 {
			t.Fatal("record not found")
		}
		put733(img[at+10:], 0xFFFF0000) // ECMA-119 9.1.4 Data Length
	}
	f, err := Open(device.NewMemory(img, sectorSize), Options{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, warn := f.Damage([]device.Range{{Off: 40 * sectorSize, Len: sectorSize}})
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("Damage took %v", d)
	}
	if !strings.Contains(strings.Join(warn, "\n"), "stops where the walk did") {
		t.Errorf("warnings %q: want the walk's budget to have run out", warn)
	}
}
