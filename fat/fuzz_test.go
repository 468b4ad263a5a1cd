package fat

import (
	"io"
	"io/fs"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mediafs/mediafs/device"
)

// seedVolumes are small images for the fuzz targets: every FAT type, long
// names, nested directories, and a few kinds of damage.
func seedVolumes(t testing.TB) [][]byte {
	var out [][]byte
	for _, ft := range []int{fat12, fat16, fat32} {
		clusters := map[int]int{fat12: 60, fat16: 4100, fat32: 120}[ft]
		tv := newTestVol(t, ft, 512, 1, clusters)
		d := tv.mkdir(tv.root(), "A long directory name")
		tv.addFile(d, "file with a long name.txt", []byte(strings.Repeat("data ", 300)))
		tv.addFile(tv.root(), "SHORT.TXT", []byte("short"))
		e := tv.mkdir(d, "SUB")
		tv.addFile(e, "😀.bin", []byte{1, 2, 3})
		// Cut the image after its last used cluster: the fuzzers work
		// better on small inputs, and truncated volumes still mount.
		tv.img = tv.img[:tv.g.clusterOffset(tv.next)]
		out = append(out, tv.img)
		// The same with a loop in the file's chain.
		bad := append([]byte(nil), tv.img...)
		tv.img = bad
		tv.setFAT(d+1, d+1)
		out = append(out, bad)
	}
	return out
}

func FuzzBootSector(f *testing.F) {
	for _, img := range seedVolumes(f) {
		f.Add(img[:512])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, ok := Probe(b)
		bs, err := decodeBootSector(b)
		if err != nil {
			if ok {
				t.Fatal("probe accepted what decode refused")
			}
			return
		}
		if ok != (bs.check() == nil) || ok && n != int(bs.BytsPerSec) {
			t.Fatalf("Probe %d %v disagrees with check %v", n, ok, bs.check())
		}
		// Encoding the decoded fields gives the same fields back.
		enc := append([]byte(nil), b...)
		bs.encode(enc)
		bs2, _ := decodeBootSector(enc)
		if *bs2 != *bs {
			t.Fatalf("round trip: %+v != %+v", bs2, bs)
		}
		if !ok {
			return
		}
		g, _, err := newGeometry(bs)
		if err != nil {
			return
		}
		if g.dataStart >= g.totalSectors || g.clusters > maxClusters(g.fatType) || g.fatType == fat32 && !g.validCluster(g.rootCluster) {
			t.Fatalf("geometry %+v", g)
		}
	})
}

func FuzzDirEntries(f *testing.F) {
	for _, img := range seedVolumes(f) {
		bs, _ := decodeBootSector(img)
		g, _, _ := newGeometry(bs)
		if g.fatType == fat32 {
			f.Add(img[g.clusterOffset(2) : g.clusterOffset(2)+512])
		} else {
			f.Add(img[g.sectorOffset(g.rootStart) : g.sectorOffset(g.rootStart)+512])
		}
		f.Add(img[g.clusterOffset(3) : g.clusterOffset(3)+512])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cp, _ := codePage(437)
		p := dirParser{cp: cp, fatType: fat16}
		for i := 0; i+dirEntrySize <= len(b); i += dirEntrySize {
			n, end := p.feed(b[i:i+dirEntrySize], int64(i))
			if end {
				break
			}
			if n == nil {
				continue
			}
			if n.name == "" || n.name == "." || n.name == ".." || strings.ContainsAny(n.name, "/\x00") || !utf8.ValidString(n.name) {
				t.Fatalf("unusable name %q", n.name)
			}
			if n.lfnOff > n.off {
				t.Fatalf("long name after its entry")
			}
			// Encoding the entry gives back its bytes.
			var raw [dirEntrySize]byte
			n.ent.encode(raw[:])
			if string(raw[:]) != string(b[i:i+dirEntrySize]) {
				t.Fatalf("entry round trip")
			}
		}
	})
}

// FuzzFAT walks chains over arbitrary FAT contents.
func FuzzFAT(f *testing.F) {
	for _, img := range seedVolumes(f) {
		bs, _ := decodeBootSector(img)
		g, _, _ := newGeometry(bs)
		f.Add(uint8(g.fatType), img[g.fatEntryOffset(0, 0):g.fatEntryOffset(1, 0)], uint32(3))
	}
	f.Fuzz(func(t *testing.T, kind uint8, fat []byte, first uint32) {
		ft := []int{fat12, fat16, fat32}[int(kind)%3]
		clusters := map[int]int{fat12: 200, fat16: 4100, fat32: 300}[ft]
		tv := newTestVol(t, ft, 512, 1, clusters)
		off := tv.g.fatEntryOffset(0, 0)
		copy(tv.img[off:tv.g.fatEntryOffset(1, 0)], fat)
		v, err := Open(device.NewStrict(device.NewMemory(tv.img, 512)), Options{})
		if err != nil {
			t.Fatal(err)
		}
		v.Info()
		ch := v.newChain(first, int64(clusters)+10)
		for idx := uint32(0); ; idx++ {
			if idx > uint32(clusters) {
				t.Fatalf("walked %d clusters of a %d-cluster volume", idx, clusters)
			}
			cl, cont, err := ch.locate(idx, idx%5+1) // with some look-ahead
			if err != nil {
				break
			}
			if cont < 1 || !v.g.validCluster(cl) || !v.g.validCluster(cl+cont-1) {
				t.Fatalf("cluster %d of the chain: %d, %d contiguous", idx, cl, cont)
			}
		}
		if st := v.CacheStats(); st.Pins != 0 {
			t.Fatalf("pins left: %+v", st)
		}
	})
}

// FuzzImage mounts arbitrary images and reads everything on them.
func FuzzImage(f *testing.F) {
	for _, img := range seedVolumes(f) {
		f.Add(img)
	}
	f.Fuzz(func(t *testing.T, img []byte) {
		if len(img) > 4<<20 {
			return
		}
		ss, ok := Probe(img)
		if !ok {
			ss = 512
		}
		v, err := Open(device.NewStrict(device.NewMemory(img, ss)), Options{})
		if err != nil {
			return
		}
		v.Info()
		// Cross-linked directories form a DAG that a naive walk would
		// follow exponentially often; a walker skips clusters it has seen.
		seen := map[uint32]bool{}
		var dirs, files int
		fs.WalkDir(v, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return nil
			}
			sys := fi.Sys().(*Sys)
			if d.IsDir() {
				if dirs++; dirs > 200 || (p != "." && seen[sys.FirstCluster]) {
					return fs.SkipDir
				}
				seen[sys.FirstCluster] = true
				return nil
			}
			if files++; files > 200 {
				return fs.SkipAll
			}
			fh, err := v.Open(p)
			if err != nil {
				return nil
			}
			io.CopyN(io.Discard, fh, 8<<20)
			fh.Close()
			return nil
		})
		if st := v.CacheStats(); st.Pins != 0 {
			t.Fatalf("pins left: %+v", st)
		}
	})
}

// FuzzFoldKey: the ASCII fast path of foldKey gives the key the rune by
// rune folding gives, and equal keys are what strings.EqualFold equates.
func FuzzFoldKey(f *testing.F) {
	var all []byte
	for c := 0; c < 0x80; c++ {
		all = append(all, byte(c))
	}
	for _, s := range []string{string(all), "README.TXT", "readme.txt", "Kelvin", "ſ", "K", "straße", "Ärger", ""} {
		f.Add(s, strings.ToLower(s))
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if ka := foldKey(a); ka != foldKeyRunes(a) {
			t.Fatalf("foldKey(%q) = %q, rune by rune %q", a, ka, foldKeyRunes(a))
		}
		if utf8.ValidString(a) && utf8.ValidString(b) && (foldKey(a) == foldKey(b)) != strings.EqualFold(a, b) {
			t.Fatalf("%q, %q: keys %q, %q; EqualFold %v", a, b, foldKey(a), foldKey(b), strings.EqualFold(a, b))
		}
	})
}
