package fat

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/mediafs/mediafs/device"
)

// salvageVol builds a FAT16 volume (512-byte sectors, 8 per cluster, so 16
// entry slots per sector) whose directory D has, slot by slot, what a bad
// sector must not confuse. It returns the volume, D's first sector and the
// names that show when D's sectors 2 and 5 cannot be read.
func salvageVol(t *testing.T) (tv *testVol, dSec int64, whenBad, whenGood []string) {
	tv = newTestVol(t, fat16, 512, 8, 5000)
	d := tv.mkdir(tv.root(), "D") // slots 0, 1: "." and ".."
	dSec = tv.g.clusterSector(d)
	slot := func() int { return tv.slots[d] }
	short := func(name string) {
		tv.addFile(d, name, []byte(name))
	}
	// raw writes a long name's slots and its short entry by hand, with
	// the short name given, so that the test knows every slot's place.
	raw := func(long string, sfn string) {
		var n [11]byte
		copy(n[:], sfn)
		slots, err := lfnSlots(long, shortNameChecksum(n))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range slots {
			var b [dirEntrySize]byte
			s.encode(b[:])
			tv.putRaw(d, b[:])
		}
		tv.addFileRaw(d, n, []byte(long))
	}
	at := func(want int) {
		if slot() != want {
			t.Fatalf("builder at slot %d, want %d", slot(), want)
		}
	}
	// Sector 0 (slots 0-15) and 1 (16-31) are good.
	for i := 2; i < 14; i++ {
		short(fmt.Sprintf("A%02d.TXT", i))
	}
	raw("straddle name one.txt", "STRADD~1TXT") // slots 14, 15 | 16: a run across a good boundary
	for i := 17; i < 30; i++ {
		short(fmt.Sprintf("B%02d.TXT", i))
	}
	at(30)
	raw("lost short entry.txt", "LOSTSH~1TXT") // slots 30, 31 | 32: its short entry is in the bad sector 2
	for i := 33; i < 48; i++ {
		short(fmt.Sprintf("C%02d.TXT", i)) // sector 2: lost
	}
	at(48)
	// Sector 3: first an entry with the lost entry's short name (and so
	// its checksum): the run before the bad sector must not glue on.
	tv.addFileRaw(d, [11]byte([]byte("LOSTSH~1TXT")), []byte("dup"))
	for i := 49; i < 64; i++ {
		short(fmt.Sprintf("D%02d.TXT", i))
	}
	// Sector 4 (64-79) good, sector 5 (80-95) bad, sector 6 good.
	for i := 64; i < 94; i++ {
		short(fmt.Sprintf("E%02d.TXT", i))
	}
	at(94)
	raw("tail of a run.txt", "TAILOF~1TXT") // slots 94, 95 | 96: the run's head is in the bad sector
	at(97)
	for i := 97; i < 100; i++ {
		short(fmt.Sprintf("G%02d.TXT", i))
	}

	for i := 2; i < 14; i++ {
		whenBad = append(whenBad, fmt.Sprintf("A%02d.TXT", i))
	}
	whenBad = append(whenBad, "straddle name one.txt")
	for i := 17; i < 30; i++ {
		whenBad = append(whenBad, fmt.Sprintf("B%02d.TXT", i))
	}
	whenBad = append(whenBad, "LOSTSH~1.TXT")
	for i := 49; i < 64; i++ {
		whenBad = append(whenBad, fmt.Sprintf("D%02d.TXT", i))
	}
	for i := 64; i < 80; i++ {
		whenBad = append(whenBad, fmt.Sprintf("E%02d.TXT", i))
	}
	whenBad = append(whenBad, "TAILOF~1.TXT") // the run's tail alone: the short name shows
	for i := 97; i < 100; i++ {
		whenBad = append(whenBad, fmt.Sprintf("G%02d.TXT", i))
	}

	whenGood = slices.Clone(whenBad)
	whenGood = slices.DeleteFunc(whenGood, func(s string) bool { return s == "TAILOF~1.TXT" })
	whenGood = append(whenGood, "lost short entry.txt", "tail of a run.txt")
	for i := 33; i < 48; i++ {
		whenGood = append(whenGood, fmt.Sprintf("C%02d.TXT", i))
	}
	for i := 80; i < 94; i++ {
		whenGood = append(whenGood, fmt.Sprintf("E%02d.TXT", i))
	}
	sort.Strings(whenBad)
	sort.Strings(whenGood)
	return tv, dSec, whenBad, whenGood
}

// addFileRaw stores data in dir under a given 8.3 name, without a long
// name.
func (tv *testVol) addFileRaw(dir uint32, sfn [11]byte, data []byte) {
	cs := tv.alloc(int(tv.g.clustersFor(int64(len(data)))))
	copy(tv.img[tv.g.clusterOffset(cs[0]):], data)
	e := dirEntry{Name: sfn, Attr: attrArchive, FileSize: uint32(len(data))}
	e.setCluster(cs[0])
	tv.putEntry(dir, e)
}

func names(ents []fs.DirEntry) []string {
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

// A directory with unreadable sectors lists the entries of its other
// sectors, with long names only where their whole run was read; the error
// names the directory and the sectors; names in readable sectors resolve;
// the damaged parse is not cached, so that after healing the whole
// directory lists.
func TestDirectorySalvageFAT(t *testing.T) {
	tv, dSec, whenBad, whenGood := salvageVol(t)
	fd := device.NewFaulty(device.NewMemory(tv.img, 512))
	fd.FailReads((dSec+2)*512, 512)
	fd.FailReads((dSec+5)*512, 512)
	v := mustOpen(t, fd, Options{})

	ents, err := v.ReadDir("D")
	if got := names(ents); !slices.Equal(got, whenBad) {
		t.Errorf("ReadDirSalvage:\n got %q\nwant %q", got, whenBad)
	}
	var dd *DirDamageError
	if !errors.Is(err, device.ErrBadSector) || !errors.As(err, &dd) {
		t.Fatalf("error %v, want a DirDamageError matching ErrBadSector", err)
	}
	if !slices.Equal(dd.Sectors, []int64{dSec + 2, dSec + 5}) || !slices.Equal(dd.Lost, []device.Range{{Off: 1024, Len: 512}, {Off: 2560, Len: 512}}) {
		t.Errorf("damage %+v", dd)
	}
	want := fmt.Sprintf("readdir /D: directory damaged: sector %d: bad sector (unreadable sectors: %d, %d)", dSec+2, dSec+2, dSec+5)
	if err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}

	// The entry with the lost entry's short name is not given its name.
	fi, err := v.Stat("D/LOSTSH~1.TXT")
	if err != nil || fi.Size() != 3 {
		t.Errorf("the entry after the bad sector: %v %v", fi, err)
	}
	if b, err := fs.ReadFile(v, "D/straddle name one.txt"); err != nil || string(b) != "straddle name one.txt" {
		t.Errorf("reading a file of the damaged directory: %q %v", b, err)
	}
	if _, err := v.Stat("D/C40.TXT"); !errors.Is(err, device.ErrBadSector) || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a name in the bad sector: %v, want the damage", err)
	}
	if _, err := v.Stat("D/NOSUCH.TXT"); !errors.Is(err, device.ErrBadSector) {
		t.Errorf("a name in no readable sector: %v, want the damage (it may be in the lost part)", err)
	}
	// Lookups in the damaged directory do not ask for its bad sectors
	// again (found in review: each one re-read the directory).
	_, _, failed := fd.Counts()
	for range 10 {
		if _, err := v.Stat("D/LOSTSH~1.TXT"); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, now := fd.Counts(); now != failed {
		t.Errorf("10 lookups made %d more failed reads", now-failed)
	}
	// The strict side (and so the writer) still refuses the directory.
	if _, err := v.ReadDir("D"); !errors.Is(err, device.ErrBadSector) {
		t.Errorf("strict ReadDir: %v", err)
	}

	// An open directory yields the entries, then the damage.
	f, err := v.Open("D")
	if err != nil {
		t.Fatal(err)
	}
	var all []fs.DirEntry
	var last error
	for range 100 {
		part, err := f.(fs.ReadDirFile).ReadDir(10)
		all = append(all, part...)
		if err != nil {
			last = err
			break
		}
	}
	if got := names(all); !slices.Equal(got, whenBad) || !errors.Is(last, device.ErrBadSector) {
		t.Errorf("Open+ReadDir(10): %d entries, %v", len(got), last)
	}
	if _, err := f.(fs.ReadDirFile).ReadDir(10); err != io.EOF {
		t.Errorf("after the damage: %v, want io.EOF", err)
	}
	f.Close()

	fd.Heal()
	for _, read := range []func(string) ([]fs.DirEntry, error){v.ReadDir} {
		ents, err := read("D")
		if got := names(ents); err != nil || !slices.Equal(got, whenGood) {
			t.Errorf("after healing: %v\n got %q\nwant %q", err, got, whenGood)
		}
	}
	if _, err := v.Stat("D/C40.TXT"); err != nil {
		t.Errorf("after healing: %v", err)
	}
}

// A FAT sector that cannot be read, in any copy, while the
// directory's cluster chain runs through it: the first cluster lists, and
// the error says the rest cannot be found.
func TestDirectorySalvageChain(t *testing.T) {
	tv := newTestVol(t, fat16, 512, 1, 5000)
	cs := tv.alloc(3) // D: three clusters of 16 slots
	tv.add(tv.root(), "D", attrDirectory, cs[0], 0)
	base := tv.g.clusterOffset(cs[0])
	put := func(i int, e dirEntry) { e.encode(tv.img[base+int64(i)*dirEntrySize:]) }
	dot := dirEntry{Name: [11]byte([]byte(".          ")), Attr: attrDirectory}
	dot.setCluster(cs[0])
	put(0, dot)
	put(1, dirEntry{Name: [11]byte([]byte("..         ")), Attr: attrDirectory})
	for i := range 40 {
		c := tv.alloc(1)[0]
		e := dirEntry{Attr: attrArchive, FileSize: 1}
		copy(e.Name[:], fmt.Sprintf("F%02d     TXT", i))
		e.setCluster(c)
		put(2+i, e)
	}
	// The sector with D's entries cannot be read in any FAT copy (with one
	// copy good, the chain would be read from it).
	fd := device.NewFaulty(device.NewMemory(tv.img, 512))
	for i := range tv.g.numFATs {
		fd.FailReads(tv.g.fatEntryOffset(i, cs[0])/512*512, 512)
	}
	v := mustOpen(t, fd, Options{})
	ents, err := v.ReadDir("D")
	var dd *DirDamageError
	if !errors.As(err, &dd) || dd.Rest == nil || !errors.Is(err, device.ErrBadSector) || len(ents) != 14 {
		t.Errorf("%d entries, %v; want the 14 of the first cluster and the chain's damage", len(ents), err)
	}
	if !strings.Contains(fmt.Sprint(err), "cluster chain cannot be followed") {
		t.Errorf("message %q", err)
	}
}
