package fat

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/mediafs/mediafs/device"
)

// Damage on a volume built slot by slot: the expectations come from where
// the builder put the clusters. (The interop tests in cmd/mediafs check
// the same against The Sleuth Kit's reading of mkfs.fat images.)
func TestDamageBuiltVolume(t *testing.T) {
	tv := newTestVol(t, fat16, 512, 4, 5000)
	ss, cs := int64(512), int64(2048)
	bigFirst, _ := tv.addFile(tv.root(), "BIG.BIN", randBytes(1, 20000)) // 10 clusters
	d := tv.mkdir(tv.root(), "D")
	for i := range 20 {
		tv.addFile(d, fmt.Sprintf("F%02d.TXT", i), []byte("f"))
	}
	tv.alloc(300) // push the next file's clusters past the first FAT sector's entries
	frag := tv.alloc(2)
	tv.alloc(1)
	frag = append(frag, tv.alloc(1)...)
	tv.setFAT(frag[1], frag[2])
	copy(tv.img[tv.g.clusterOffset(frag[0]):], randBytes(2, 5000))
	tv.add(tv.root(), "FRAG.BIN", attrArchive, frag[0], 5000)
	if frag[0] < 256 || frag[2] >= 512 {
		t.Fatalf("FRAG.BIN at clusters %v: want its entries in the second FAT sector", frag)
	}

	g := tv.g
	fat2 := g.reserved + g.fatSectors
	bad := []device.Range{
		{Off: g.clusterOffset(bigFirst+2) + ss, Len: 100},      // BIG.BIN: a sector of its third cluster
		{Off: g.clusterOffset(d) + ss, Len: ss},                // D's second sector
		{Off: fat2 * ss, Len: ss},                              // FAT 2, first sector: FAT 1 has it
		{Off: (g.reserved + 1) * ss, Len: ss},                  // the second sector of both FATs:
		{Off: (fat2 + 1) * ss, Len: ss},                        // FRAG.BIN's chain is lost
		{Off: (g.rootStart + g.rootSectors - 1) * ss, Len: ss}, // the root's last sector
	}
	fd := device.NewFaulty(device.NewMemory(tv.img, 512))
	for _, b := range bad {
		fd.FailReads(b.Off, b.Len)
	}
	v := mustOpen(t, fd, Options{})
	got, warn := v.Damage(bad)
	if len(warn) != 0 {
		t.Errorf("warnings %q", warn)
	}
	notes := map[string]string{}
	for i := range got {
		notes[got[i].Path] = got[i].Note
		got[i].Note = ""
	}
	want := []Damage{
		{Path: "<FAT 1>", Kind: "metadata", Size: g.fatSectors * ss, Ranges: []device.Range{{Off: (g.reserved + 1) * ss, Len: ss}}},
		{Path: "<FAT 2>", Kind: "metadata", Size: g.fatSectors * ss, Ranges: []device.Range{{Off: fat2 * ss, Len: 2 * ss}}},
		{Path: "/", Kind: "dir", Size: 512 * 32, Ranges: []device.Range{{Off: (g.rootSectors - 1) * ss, Len: ss}}, LostSectors: 1, LostEntries: 16},
		{Path: "/BIG.BIN", Kind: "file", Size: 20000, Ranges: []device.Range{{Off: 2*cs + ss, Len: ss}}},
		{Path: "/D", Kind: "dir", Size: cs, Ranges: []device.Range{{Off: ss, Len: ss}}, LostSectors: 1, LostEntries: 16},
		{Path: "/FRAG.BIN", Kind: "file", Size: 5000, Ranges: []device.Range{{Off: cs, Len: 5000 - cs}}},
	}
	sort.Slice(got, func(i, j int) bool { return got[i].Path < got[j].Path })
	sort.Slice(want, func(i, j int) bool { return want[i].Path < want[j].Path })
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Damage:\n got %+v\nwant %+v", got, want)
	}
	for path, frag := range map[string]string{
		"<FAT 1>":   "no FAT copy can deliver the entries of clusters 256-511",
		"<FAT 2>":   "no FAT copy can deliver the entries of clusters 256-511",
		"/FRAG.BIN": "cannot be followed past byte 2048",
	} {
		if !strings.Contains(notes[path], frag) {
			t.Errorf("%s: note %q, want %q", path, notes[path], frag)
		}
	}
}

// FAT32: the FSInfo and backup boot sectors are metadata; with mirroring
// off the inactive FAT is not in use, and its loss costs nothing, while
// the active one has no stand-in.
func TestDamageFAT32Metadata(t *testing.T) {
	tv := newTestVol(t, fat32, 512, 1, 70000)
	first, _ := tv.addFile(tv.root(), "FILE.BIN", randBytes(3, 3000)) // clusters 3..8
	tv.bs.ExtFlags = extFlagNoMirror                                  // FAT 1 (index 0) active, no mirroring
	tv.writeBoot()
	g := tv.g
	ss := int64(512)
	entSec := g.fatEntryOffset(0, first) / ss
	bad := []device.Range{
		{Off: 1 * ss, Len: ss},                       // FSInfo
		{Off: 6 * ss, Len: ss},                       // backup boot sector
		{Off: (entSec + g.fatSectors) * ss, Len: ss}, // FAT 2: not in use
		{Off: entSec * ss, Len: ss},                  // FAT 1, active: FILE.BIN's chain is lost
	}
	fd := device.NewFaulty(device.NewMemory(tv.img, 512))
	for _, b := range bad {
		fd.FailReads(b.Off, b.Len)
	}
	v := mustOpen(t, fd, Options{})
	got, _ := v.Damage(bad)
	byPath := map[string]Damage{}
	for _, d := range got {
		byPath[d.Path] = d
	}
	for path, r := range map[string]device.Range{
		"<FSInfo sector>":      {Off: ss, Len: ss},
		"<backup boot sector>": {Off: 6 * ss, Len: ss},
		"<FAT 1>":              {Off: entSec * ss, Len: ss},
		"<FAT 2>":              {Off: (entSec + g.fatSectors) * ss, Len: ss},
	} {
		if d, ok := byPath[path]; !ok || len(d.Ranges) != 1 || d.Ranges[0] != r || d.Kind != "metadata" {
			t.Errorf("%s: %+v, want metadata at %v", path, d, r)
		}
	}
	if n := byPath["<FAT 2>"].Note; !strings.Contains(n, "not in use") {
		t.Errorf("FAT 2 note %q", n)
	}
	if d := byPath["/FILE.BIN"]; len(d.Ranges) != 1 || d.Ranges[0] != (device.Range{Off: 512, Len: 2488}) {
		t.Errorf("FILE.BIN: %+v, want [512, +2488) lost (its chain is unreadable after the first cluster)", d)
	}
}

// Cross-linked files that all claim 4 GiB on one long chain: the walk
// stops at its budget (every cluster in at most about two chains), with a
// warning.
func TestDamageBounded(t *testing.T) {
	tv := newTestVol(t, fat16, 512, 1, 5000)
	chain := tv.alloc(4990)
	for i := range 400 {
		e := dirEntry{Attr: attrArchive, FileSize: 0xFFFFFFFF}
		copy(e.Name[:], fmt.Sprintf("X%04d   BIN", i))
		e.setCluster(chain[0])
		tv.putEntry(tv.root(), e)
	}
	v := mustOpen(t, device.NewMemory(tv.img, 512), Options{})
	_, warn := v.Damage([]device.Range{{Off: tv.g.clusterOffset(chain[100]), Len: 512}})
	if !strings.Contains(strings.Join(warn, "\n"), "the report stops where the walk did") {
		t.Errorf("warnings %q", warn)
	}
}
