package iso9660

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCorpusElTorito compares the boot catalogs of the El Torito corpus
// images with xorriso's report, and each boot image's bytes with the file
// xorriso names for it.
func TestCorpusElTorito(t *testing.T) {
	for _, rel := range []string{
		"coreos-installer/embed-areas-2020-09.iso",
		"coreos-installer/embed-areas-2023-07.s390x.iso",
		"coreos-installer/embed-areas-2023-07.x86_64.iso",
	} {
		t.Run(rel, func(t *testing.T) {
			p := corpusPath(t, rel)
			f, _ := openImage(t, loadImage(t, p), Options{})
			rep, err := os.ReadFile(filepath.Join(filepath.Dir(p), "expected", filepath.Base(rel)+".eltorito-xorriso.txt"))
			if err != nil {
				t.Fatal(err)
			}
			info := f.Info()
			if !info.ElTorito {
				t.Fatal("El Torito not detected")
			}
			paths := map[int]string{}
			var want []BootEntry
			for _, line := range strings.Split(string(rep), "\n") {
				fl := strings.Fields(line)
				switch {
				case strings.HasPrefix(line, "El Torito boot img :"):
					// N Pltf B Emul Ld_seg Hdpt Ldsiz LBA
					c := fl[5:]
					seg, _ := strconv.ParseUint(strings.TrimPrefix(c[4], "0x"), 16, 16)
					cnt, _ := strconv.Atoi(c[6])
					lba, _ := strconv.Atoi(c[7])
					plat := map[string]string{"BIOS": "x86", "UEFI": "EFI"}[c[1]]
					want = append(want, BootEntry{Platform: plat, Bootable: c[2] == "y", Emulation: c[3], LoadSegment: uint16(seg), SectorCount: uint16(cnt), LoadRBA: uint32(lba)})
				case strings.HasPrefix(line, "El Torito img path :"):
					n, _ := strconv.Atoi(fl[5])
					paths[n-1] = strings.TrimPrefix(fl[6], "/")
				}
			}
			if len(info.Boot) != len(want) {
				t.Fatalf("%d boot entries, want %d: %+v", len(info.Boot), len(want), info.Boot)
			}
			for i, w := range want {
				g := info.Boot[i]
				if g.Platform != w.Platform || g.Bootable != w.Bootable || g.Emulation != w.Emulation || g.LoadSegment != w.LoadSegment || g.SectorCount != w.SectorCount || g.LoadRBA != w.LoadRBA || g.Index != i {
					t.Errorf("entry %d = %+v, want %+v", i, g, w)
				}
				src, err := readAll(f, paths[i])
				if err != nil {
					t.Fatalf("entry %d: %v", i, err)
				}
				bi, err := f.Boot(i)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(bi)
				if err != nil {
					t.Fatal(err)
				}
				if bi.Size() != int64(len(src)) || !bytes.Equal(got, src) {
					t.Errorf("boot image %d: %d bytes, want the %d bytes of %s", i, len(got), len(src), paths[i])
				}
			}
			if _, err := f.Boot(len(want)); err == nil {
				t.Error("Boot past the last entry did not fail")
			}
			checkNoPins(t, f)
		})
	}
}

func readAll(f *FS, name string) ([]byte, error) {
	fl, err := f.Open(name)
	if err != nil {
		return nil, err
	}
	defer fl.Close()
	return io.ReadAll(fl)
}

// TestCorpusHostile opens the damaged and hostile corpus images. Each must
// end in bounded time without a panic; each has a specific expected outcome.
func TestCorpusHostile(t *testing.T) {
	cases := []struct {
		rel     string
		openErr bool     // Open must fail
		walkErr string   // a walk error must contain this ("" = no error required)
		present []string // entries that must still be listed
	}{
		{rel: "libarchive/test_read_format_iso_rockridge_ce_loop.iso", walkErr: "continuation area loop", present: []string{"dir"}},
		{rel: "libarchive/test_read_format_iso_joliet_utf16be_overflow.iso"},
		// A is a directory of size 0 in the last block: no "." record.
		{rel: "libarchive/test_read_format_iso_rockridge_zf_overflow.iso", walkErr: `no "." record`, present: []string{"A"}},
		{rel: "libarchive/test_read_format_iso_zisofs_overflow.iso", present: []string{"OVERFLOW.BIN"}},
		{rel: "libcdio/malformed.iso", openErr: true},
		// The root's "." record has length 2: the directory stops there with
		// an error naming byte 47104 (libcdio resynchronises and finds a and
		// b.txt; we do not guess where records start).
		{rel: "libcdio/malformed2.iso", walkErr: "byte 47104 (sector 23): directory record length 2 is below the minimum 34"},
		// The root sector starts with a zero length byte: no records at all.
		{rel: "libcdio/bad-dir.iso", walkErr: `directory has no "." record`},
		{rel: "libarchive/test_fuzz_1.iso.gz"},
	}
	for _, c := range cases {
		t.Run(c.rel, func(t *testing.T) {
			img := loadImage(t, corpusPath(t, c.rel))
			done := make(chan struct{})
			var f *FS
			var err error
			var rows map[string]entryRow
			var errs []error
			go func() {
				defer close(done)
				f, err = Open(strictDevice(img), Options{})
				if err == nil {
					rows, errs = walkImage(t, f, true)
				}
			}()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("did not finish in 20 s")
			}
			if c.openErr {
				if err == nil {
					t.Fatal("Open succeeded")
				}
				t.Logf("Open: %v", err)
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			joined := errors.Join(errs...)
			t.Logf("walk: %d entries, errors: %v, warnings: %q", len(rows), joined, f.Info().Warnings)
			if c.walkErr != "" && (joined == nil || !strings.Contains(joined.Error(), c.walkErr)) {
				t.Errorf("walk error %v, want one containing %q", joined, c.walkErr)
			}
			for _, p := range c.present {
				if _, ok := rows[p]; !ok {
					t.Errorf("%s is not listed", p)
				}
			}
		})
	}
}

// TestCorpusSessions reads each session of the 3-session util-linux image
// (Options.Session is the session's first sector, as Linux's sbsector=).
func TestCorpusSessions(t *testing.T) {
	img := loadImage(t, corpusPath(t, "util-linux/iso-multi-0-174-348-genisoimage.img.gz"))
	for _, c := range []struct {
		session int64
		label   string
	}{{0, "first session"}, {174, "second session"}, {348, "third session"}} {
		f, _ := openImage(t, img, Options{Session: c.session})
		if got := f.Info().Label; got != c.label {
			t.Errorf("session %d: label %q, want %q", c.session, got, c.label)
		}
		walkImage(t, f, false)
	}
	if _, err := Open(strictDevice(img), Options{Session: 100}); err == nil {
		t.Error("Open at a sector without a volume descriptor succeeded")
	}
	if Probe(strictDevice(img), 100) || !Probe(strictDevice(img), 174) {
		t.Error("Probe is wrong about sessions 100 and 174")
	}
}

// TestCorpusLabels: the PVD and Joliet identifiers are both exposed
// (corpus-notes 5).
func TestCorpusLabels(t *testing.T) {
	for _, c := range []struct {
		rel, label, joliet, system string
	}{
		{"util-linux/iso-different-iso-joliet-label.img.gz", "ISO_LABEL", "Joliet Label", "ISO SYSTEM IDENTIFIER"},
		{"util-linux/iso-unicode-long-label.img.gz", "NA_VE_AND_VERY_LOOOOOOOONG_LABEL", "Naïve and very l", ""},
		{"coreos-installer/synthetic.iso", "volume-ID-string", "", "system-ID-string"},
	} {
		f, _ := openImage(t, loadImage(t, corpusPath(t, c.rel)), Options{})
		i := f.Info()
		if i.Label != c.label || i.JolietLabel != c.joliet || (c.system != "" && i.SystemID != c.system) {
			t.Errorf("%s: label %q joliet %q system %q", c.rel, i.Label, i.JolietLabel, i.SystemID)
		}
		if c.rel == "coreos-installer/synthetic.iso" && i.VolumeBlocks != 338 {
			t.Errorf("synthetic.iso: %d blocks, want 338", i.VolumeBlocks)
		}
	}
}

// TestCorpusVolumeDescriptors decodes go-diskfs's copy of the Ubuntu 18.04.1
// descriptor set (sectors 16-19 only, so it is decoded directly).
func TestCorpusVolumeDescriptors(t *testing.T) {
	b := loadImage(t, corpusPath(t, "go-diskfs/volrecords.iso"))
	var vds []*volumeDescriptor
	for off := 0; off+sectorSize <= len(b); off += sectorSize {
		vd, err := decodeVolumeDescriptor(b[off : off+sectorSize])
		if err != nil {
			t.Fatal(err)
		}
		vds = append(vds, vd)
	}
	if len(vds) != 4 || vds[0].Type != vdPrimary || vds[1].Type != vdBootRecord || vds[2].Type != vdSupplementary || vds[3].Type != vdTerminator {
		t.Fatalf("descriptor types wrong: %d descriptors", len(vds))
	}
	p := vds[0]
	if aString(p.VolumeID) != "Ubuntu-Server 18.04.1 LTS amd64" || p.VolumeSpaceSize != 415744 || p.PathTableSize != 972 || p.LTable != 114 || p.BlockSize != 2048 || !p.BlockSizeAgrees {
		t.Errorf("PVD: %q %d %d %d %d", aString(p.VolumeID), p.VolumeSpaceSize, p.PathTableSize, p.LTable, p.BlockSize)
	}
	if !strings.HasPrefix(aString(p.Preparer), "XORRISO-1.2.4 2012.07.20.130001") {
		t.Errorf("preparer %q", aString(p.Preparer))
	}
	if !vds[1].isElTorito() || vds[1].BootCatalog != 193 {
		t.Errorf("boot record: El Torito %v, catalog %d", vds[1].isElTorito(), vds[1].BootCatalog)
	}
	if j := vds[2]; j.jolietLevel() != 3 || ucs2String(j.VolumeID) != "Ubuntu-Server 18" || j.PathTableSize != 1386 || j.LTable != 190 {
		t.Errorf("Joliet SVD: level %d %q %d %d", j.jolietLevel(), ucs2String(j.VolumeID), j.PathTableSize, j.LTable)
	}
}
