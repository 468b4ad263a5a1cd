package fat

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"golang.org/x/text/encoding/charmap"

	"github.com/mediafs/mediafs/device"
)

// listingRow is one row of a corpus expected/*.listing.tsv for FAT:
// path type size mtime ctime atime attrs sha256.
type listingRow struct {
	path, typ, size, mtime, ctime, atime, attrs, sha string
}

func readListing(t *testing.T, rel string) map[string]listingRow {
	t.Helper()
	f, err := os.Open(corpusPath(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows := map[string]listingRow{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "#") || sc.Text() == "" {
			continue
		}
		c := strings.Split(sc.Text(), "\t")
		if len(c) != 8 {
			t.Fatalf("%s: bad row %q", rel, sc.Text())
		}
		rows[c[0]] = listingRow{c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]}
	}
	return rows
}

// checkListing compares a volume with an expected listing: the same paths,
// types, sizes, times, attributes and contents.
func checkListing(t *testing.T, v *FS, rows map[string]listingRow) {
	t.Helper()
	seen := map[string]bool{}
	err := fs.WalkDir(v, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		seen[p] = true
		row, ok := rows[p]
		if !ok {
			t.Errorf("unexpected %s", p)
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		sys := fi.Sys().(*Sys)
		if (row.typ == "dir") != d.IsDir() {
			t.Errorf("%s: dir %v, want %s", p, d.IsDir(), row.typ)
		}
		if got := fi.ModTime().Format("2006-01-02 15:04:05"); got != row.mtime {
			t.Errorf("%s: mtime %s, want %s", p, got, row.mtime)
		}
		if got := sys.Created.Format("2006-01-02 15:04:05.00"); got != row.ctime {
			t.Errorf("%s: ctime %s, want %s", p, got, row.ctime)
		}
		if got := sys.Accessed.Format("2006-01-02 15:04:05"); got != row.atime {
			t.Errorf("%s: atime %s, want %s", p, got, row.atime)
		}
		if sys.AttrString != row.attrs {
			t.Errorf("%s: attrs %s, want %s", p, sys.AttrString, row.attrs)
		}
		if d.IsDir() {
			return nil
		}
		if got := strconv.FormatInt(fi.Size(), 10); got != row.size {
			t.Errorf("%s: size %s, want %s", p, got, row.size)
		}
		f, err := v.Open(p)
		if err != nil {
			t.Errorf("open %s: %v", p, err)
			return nil
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			t.Errorf("read %s: %v", p, err)
		} else if got := hex.EncodeToString(h.Sum(nil)); got != row.sha {
			t.Errorf("%s: sha256 %s, want %s", p, got, row.sha)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for p := range rows {
		if !seen[p] {
			t.Errorf("missing %s", p)
		}
	}
}

func TestCorpusListings(t *testing.T) {
	cases := []struct {
		image, listing string
		off, size      int64 // a partition, in bytes (size 0: the whole image)
		typ, label     string
		serial         uint32
		clusters, free int64 // 0: not asserted
		tree           []string
	}{
		{image: "rust-fatfs/fat12.img", listing: "rust-fatfs/expected/fat12.img.listing.tsv", typ: "fat12", label: "Test!", serial: 0x12345678, clusters: 1955, free: 1920},
		{image: "rust-fatfs/fat16.img.gz", listing: "rust-fatfs/expected/fat16.img.listing.tsv", typ: "fat16", label: "Test!", serial: 0x12345678, clusters: 4927, free: 4892},
		{image: "lde-testdata/test.msdos", listing: "lde-testdata/expected/test.msdos.listing.tsv", typ: "fat12", label: "LDE-MSDOS"},
		{image: "lde-testdata/test.vfat", listing: "lde-testdata/expected/test.vfat.listing.tsv", typ: "fat12", label: "LDE-FAT"},
		{image: "embedded-sdmmc-rs/disk.img.gz", listing: "embedded-sdmmc-rs/expected/disk.img.part0-fat16.listing.tsv", off: 2048 * 512, size: 262144 * 512, typ: "fat16", label: "P-FAT16"},
		{image: "embedded-sdmmc-rs/disk.img.gz", listing: "embedded-sdmmc-rs/expected/disk.img.part1-fat32.listing.tsv", off: 264192 * 512, size: 784384 * 512, typ: "fat32", label: "P-FAT32"},
	}
	for _, c := range cases {
		t.Run(filepath.Base(c.listing), func(t *testing.T) {
			var d device.Device = corpusDevice(t, c.image, 512)
			if c.size != 0 {
				w, err := device.NewWindow(d, c.off, c.size)
				if err != nil {
					t.Fatal(err)
				}
				d = device.NewStrict(w)
			}
			v := mustOpen(t, d, Options{})
			inf := v.Info()
			if inf.Type != c.typ || inf.Label != c.label {
				t.Errorf("type %s label %q, want %s %q", inf.Type, inf.Label, c.typ, c.label)
			}
			if c.serial != 0 && inf.Serial != c.serial {
				t.Errorf("serial %08X, want %08X", inf.Serial, c.serial)
			}
			if c.clusters != 0 && (inf.Clusters != c.clusters || inf.Free != c.free*int64(inf.ClusterSize)) {
				t.Errorf("clusters %d free %d bytes, want %d clusters %d free", inf.Clusters, inf.Free, c.clusters, c.free)
			}
			if inf.Dirty {
				t.Errorf("dirty")
			}
			checkListing(t, v, readListing(t, c.listing))
			// fstest reads every file byte by byte; keep it off the
			// 64 MiB files of the SD-card image.
			var fsys fs.FS = v
			var expect []string
			for p := range readListing(t, c.listing) {
				expect = append(expect, p)
			}
			if c.size != 0 {
				fsys, _ = fs.Sub(v, "TEST")
				expect = []string{"TEST.DAT"}
			}
			if err := fstest.TestFS(fsys, expect...); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestEmbeddedSdmmcRoot checks the root order and the label entry that is
// not first (corpus-notes 26), and that deleted entries are not listed.
func TestEmbeddedSdmmcRoot(t *testing.T) {
	d := corpusDevice(t, "embedded-sdmmc-rs/disk.img.gz", 512)
	w, err := device.NewWindow(d, 264192*512, 784384*512)
	if err != nil {
		t.Fatal(err)
	}
	v := mustOpen(t, device.NewStrict(w), Options{})
	names := rootInOrder(t, v)
	want := []string{"64MB.DAT", "EMPTY.DAT", "README.TXT", "TEST", ".fseventsd", "This is a long file name £99", "Copy of Readme.txt"}
	if !slices.Equal(names, want) {
		t.Errorf("root in directory order: %q, want %q", names, want)
	}
	fi, err := v.Stat("this is a long file name £99")
	if err != nil || fi.Sys().(*Sys).ShortName != "THISIS~9" {
		t.Errorf("case-folded LFN lookup: %v %v", fi, err)
	}
}

// rootInOrder lists the root directory in on-disk order.
func rootInOrder(t *testing.T, v *FS) []string {
	t.Helper()
	f, err := v.Open(".")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ents, err := f.(fs.ReadDirFile).ReadDir(-1)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// decodeBlkidEnc undoes blkid's \xNN escapes.
func decodeBlkidEnc(s string) []byte {
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			if n, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b = append(b, byte(n))
				i += 3
				continue
			}
		}
		b = append(b, s[i])
	}
	return b
}

// TestCorpusBlkid checks type, label (root entry), boot label and serial
// against blkid's expectations for every util-linux FAT image; this covers
// the label truth table of corpus-notes 23.
func TestCorpusBlkid(t *testing.T) {
	dir := filepath.Join(corpusPath(t, "util-linux"), "expected")
	probes, _ := filepath.Glob(filepath.Join(dir, "low-probe-fat*"))
	if len(probes) < 20 {
		t.Fatalf("only %d blkid probes found", len(probes))
	}
	for _, probe := range probes {
		name := strings.TrimPrefix(filepath.Base(probe), "low-probe-")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(probe)
			if err != nil {
				t.Fatal(err)
			}
			keys := map[string]string{}
			for _, l := range strings.Split(string(raw), "\n") {
				if k, val, ok := strings.Cut(l, "="); ok {
					keys[k] = val
				}
			}
			v := mustOpen(t, corpusDevice(t, "util-linux/"+name+".img.gz", 512), Options{})
			inf := v.Info()
			if want := strings.ToLower(keys["ID_FS_VERSION"]); inf.Type != want {
				t.Errorf("type %s, want %s", inf.Type, want)
			}
			dec := func(k string) string {
				s, _ := charmap.CodePage437.NewDecoder().Bytes(decodeBlkidEnc(keys[k]))
				return string(s)
			}
			if want := dec("ID_FS_LABEL_ENC"); inf.Label != want {
				t.Errorf("label %q, want %q", inf.Label, want)
			}
			if want := dec("ID_FS_LABEL_FATBOOT_ENC"); inf.BootLabel != want {
				t.Errorf("boot label %q, want %q", inf.BootLabel, want)
			}
			if want := keys["ID_FS_UUID"]; fmt.Sprintf("%04X-%04X", inf.Serial>>16, inf.Serial&0xFFFF) != want {
				t.Errorf("serial %08X, want %s", inf.Serial, want)
			}
		})
	}
}

func TestCorpusSpecialImages(t *testing.T) {
	t.Run("cp850 label", func(t *testing.T) {
		v := mustOpen(t, corpusDevice(t, "util-linux/fat32_cp850_O_tilde.img.gz", 512), Options{CodePage: 850})
		if inf := v.Info(); inf.Label != "ÕÕÕ" || inf.BootLabel != "ÕÕÕ" {
			t.Errorf("labels %q %q, want ÕÕÕ (the 0x05 escape and CP850)", inf.Label, inf.BootLabel)
		}
	})
	t.Run("low-count FAT32", func(t *testing.T) {
		for _, img := range []string{"util-linux/small-fat32.img.gz", "lde-testdata/test.vfat32.gz"} {
			v := mustOpen(t, corpusDevice(t, img, 512), Options{})
			inf := v.Info()
			if inf.Type != "fat32" || !hasWarning(inf, "FAT32 volume with only") {
				t.Errorf("%s: %s, warnings %q", img, inf.Type, inf.Warnings)
			}
			if err := fstest.TestFS(v); err != nil {
				t.Error(err)
			}
		}
	})
	t.Run("truncated camera card", func(t *testing.T) {
		v := mustOpen(t, corpusDevice(t, "util-linux/fat16_noheads.img.gz", 512), Options{})
		inf := v.Info()
		if inf.Type != "fat16" || inf.Label != "VTech 1070" || inf.ClusterSize != 4096 {
			t.Errorf("info %+v", inf)
		}
		if !hasWarning(inf, "reads beyond the end will fail") {
			t.Errorf("no truncation warning: %q", inf.Warnings)
		}
		got := walkPaths(t, v)
		want := []string{"DOWNLOAD/", "DOWNLOAD/PHOTO/", "DOWNLOAD/VIDEO/", "PHOTO/", "VIDEO/"}
		if !slices.Equal(got, want) {
			t.Errorf("tree %q, want %q", got, want)
		}
		fi, err := v.Stat("PHOTO")
		if err != nil || !fi.ModTime().IsZero() {
			t.Errorf("month-0 date should be unset: %v %v", fi, err)
		}
	})
	t.Run("zeroed FATs", func(t *testing.T) {
		v := mustOpen(t, corpusDevice(t, "lde-testdata/test.fat", 512), Options{})
		ents, err := v.ReadDir(".")
		if err != nil || len(ents) != 0 {
			t.Errorf("root: %v %v", ents, err)
		}
		if !hasWarning(v.Info(), "media byte") {
			t.Errorf("no warning for the missing media byte: %q", v.Info().Warnings)
		}
	})
	t.Run("empty FAT16", func(t *testing.T) {
		v := mustOpen(t, corpusDevice(t, "lde-testdata/test.fat16.gz", 512), Options{})
		if inf := v.Info(); inf.Type != "fat16" || inf.Label != "LDEFAT16" {
			t.Errorf("info %+v", inf)
		}
	})
	t.Run("mtools FAT12", func(t *testing.T) {
		v := mustOpen(t, corpusDevice(t, "util-linux/fat.img.gz", 512), Options{})
		if inf := v.Info(); inf.Type != "fat12" || inf.Label != "TEST-FAT" || inf.OEMName != "MTOOL399" || inf.Serial != 0xDEADBEEF {
			t.Errorf("info %+v", inf)
		}
	})
}

func hasWarning(inf Info, sub string) bool {
	return slices.ContainsFunc(inf.Warnings, func(w string) bool { return strings.Contains(w, sub) })
}

// TestDosfstoolsReference mounts the mkfs.fat reference layouts, including
// 4096-byte sectors and an MBR written into the boot sector.
func TestDosfstoolsReference(t *testing.T) {
	cases := []struct {
		file, typ, label string
		ss               int
	}{
		{"referenceFAT12.xxd", "fat12", "TESTFAT12", 512},
		{"referenceFAT16.xxd", "fat16", "TESTFAT16", 512},
		{"referenceFAT32.xxd", "fat32", "TESTFAT32", 512},
		{"referenceFAT32mbr.xxd", "fat32", "TESTFAT32", 512},
		{"mkfs-fat32_1_bad_block.xxd", "fat32", "TESTFAT32", 512},
		{"mkfs-fat32_2_res_sects.xxd", "fat32", "TESTFAT32", 512},
		{"mkfs-fat32_4K.xxd", "fat32", "TEST4K", 4096},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			v := mustOpen(t, corpusDevice(t, "dosfstools/"+c.file, c.ss), Options{})
			inf := v.Info()
			if inf.Type != c.typ || inf.Label != c.label || inf.Serial != 0x1234abcd || inf.SectorSize != c.ss {
				t.Errorf("info %+v", inf)
			}
			if inf.Dirty || inf.FATsDiffer {
				t.Errorf("dirty %v differ %v", inf.Dirty, inf.FATsDiffer)
			}
			if c.file == "mkfs-fat32_1_bad_block.xxd" {
				// The 1 KiB bad block is two BAD clusters; the root
				// directory takes a third.
				var bad int
				for c := uint32(2); c < uint32(inf.Clusters)+2; c++ {
					if e, _ := v.fatEntry(c); v.g.classify(e) == entBad {
						bad++
					}
				}
				if bad != 2 || inf.Free != (inf.Clusters-3)*int64(inf.ClusterSize) {
					t.Errorf("free %d of %d clusters", inf.Free/int64(inf.ClusterSize), inf.Clusters)
				}
			}
			if err := fstest.TestFS(v); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestDosfstoolsDamaged reads each broken image of the fsck cases and its
// repaired twin. Every read ends promptly; the broken ones fail with
// corruption errors that name the file and the cluster.
func TestDosfstoolsDamaged(t *testing.T) {
	type want struct {
		path string // a file whose read must fail with ErrCorrupt
		msg  string // text the error must hold
	}
	broken := map[string][]want{
		"check-circular_chain.fsck": {{"TEST4CLS.TXT", "read /TEST4CLS.TXT: cluster chain loops at cluster 4"}},
	}
	// Chains longer than the file (check-chain_too_long, and
	// check-chain_to_free_cluster, whose extra cluster is free) read the
	// clusters the size needs and no further, as Windows and Linux do:
	// finding the excess is fsck's work, not a reader's.
	files, _ := filepath.Glob(filepath.Join(corpusPath(t, "dosfstools"), "check-*"))
	if len(files) < 30 {
		t.Fatalf("only %d dosfstools cases", len(files))
	}
	for _, p := range files {
		name := filepath.Base(p)
		t.Run(name, func(t *testing.T) {
			done := make(chan struct{})
			go func() {
				defer close(done)
				v, err := Open(corpusDevice(t, "dosfstools/"+name, 512), Options{})
				if err != nil {
					t.Errorf("Open: %v", err)
					return
				}
				v.Info()
				errs := readAll(v)
				for _, w := range broken[name] {
					err := errs[w.path]
					if !errors.Is(err, ErrCorrupt) || !strings.Contains(fmt.Sprint(err), w.msg) {
						t.Errorf("%s: error %v, want ErrCorrupt with %q", w.path, err, w.msg)
					}
				}
				if strings.HasSuffix(name, ".xxd") {
					for p, err := range errs {
						t.Errorf("repaired image: %s: %v", p, err)
					}
				}
				if st := v.CacheStats(); st.Pins != 0 {
					t.Errorf("pins left: %+v", st)
				}
			}()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("reading the image did not end")
			}
		})
	}
}

// readAll walks the volume and reads every file, collecting the errors by
// path (a directory that cannot be listed counts too).
func readAll(v *FS) map[string]error {
	errs := map[string]error{}
	fs.WalkDir(v, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			errs[p] = err
			return nil
		}
		if d.IsDir() {
			return nil
		}
		if _, err := fs.ReadFile(v, p); err != nil {
			errs[p] = err
		}
		return nil
	})
	return errs
}
