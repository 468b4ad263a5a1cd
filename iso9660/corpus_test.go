package iso9660

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// corpusImages maps a corpus image to its listing (bsdtar's, with upstream
// assertions winning; see the corpus MANIFEST).
var corpusImages = []string{
	"coreos-installer/embed-areas-2020-09.iso",
	"coreos-installer/embed-areas-2023-07.s390x.iso",
	"coreos-installer/embed-areas-2023-07.x86_64.iso",
	"coreos-installer/synthetic.iso",
	"dfvfs/iso9660.raw",
	"kdomanski-iso9660/test.iso.gz",
	"kdomanski-iso9660/test_rockridge.iso.gz",
	"lde-testdata/test.iso9660j",
	"libarchive/test_fuzz_1.iso.gz",
	"libarchive/test_read_format_iso.iso",
	"libarchive/test_read_format_iso_2.iso",
	"libarchive/test_read_format_iso_3.iso",
	"libarchive/test_read_format_iso_joliet.iso",
	"libarchive/test_read_format_iso_joliet_by_nero.iso.gz",
	"libarchive/test_read_format_iso_joliet_long.iso",
	"libarchive/test_read_format_iso_joliet_rockridge.iso",
	"libarchive/test_read_format_iso_multi_extent.iso",
	"libarchive/test_read_format_iso_rockridge.iso.gz",
	"libarchive/test_read_format_iso_rockridge_ce.iso",
	"libarchive/test_read_format_iso_rockridge_new.iso.gz",
	"libarchive/test_read_format_iso_rockridge_rr_moved.iso.gz",
	"libarchive/test_read_format_iso_xorriso.iso",
	"libarchive/test_read_format_iso_zisofs.iso",
	"libarchive/test_read_format_iso_zisofs_overflow.iso",
	"libcdio/copying-rr.iso",
	"libcdio/copying.iso",
	"libcdio/deep-directory.iso",
	"libcdio/joliet.iso",
	"libcdio/multi_extent_8k.iso",
	"libcdio/multi_extent_8k_emul_toc_padded.iso",
	"libcdio/multi_extent_8k_joliet.iso",
	"util-linux/iso-different-iso-joliet-label.img.gz",
	"util-linux/iso-joliet.img",
	"util-linux/iso-multi-0-174-348-genisoimage.img.gz",
	"util-linux/iso-rr-joliet.img",
	"util-linux/iso-unicode-long-label.img.gz",
	"util-linux/iso.img",
}

type listingRow struct {
	typ, perm, uid, gid, size, mtime, sha, extra string
}

func readListing(t *testing.T, path string) map[string]listingRow {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]listingRow{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		c := strings.Split(line, "\t")
		for len(c) < 9 {
			c = append(c, "")
		}
		rows[c[0]] = listingRow{c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8]}
	}
	return rows
}

func corpusPath(t *testing.T, rel string) string {
	p := filepath.Join(corpusDir, rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("corpus image %s is absent", rel)
	}
	return p
}

// TestCorpusListings reads every corpus image that has a listing and
// compares every entry with it: names, types, sizes, content hashes,
// symlink targets, times, and with Rock Ridge the owner and permissions.
func TestCorpusListings(t *testing.T) {
	for _, rel := range corpusImages {
		t.Run(rel, func(t *testing.T) {
			p := corpusPath(t, rel)
			img := loadImage(t, p)
			f, _ := openImage(t, img, Options{})
			got, _ := walkImage(t, f, false)
			base := strings.TrimSuffix(filepath.Base(rel), ".gz")
			want := readListing(t, filepath.Join(filepath.Dir(p), "expected", base+".listing.tsv"))
			compareListing(t, f, got, want)
		})
	}
}

func compareListing(t *testing.T, f *FS, got map[string]entryRow, want map[string]listingRow) {
	t.Helper()
	rr := f.Info().Namespace == "rr"
	var paths []string
	for p := range want {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		w := want[p]
		if p == "." {
			info, err := f.Stat(".")
			if err != nil {
				t.Errorf("Stat(.): %v", err)
				continue
			}
			checkTime(t, p, info.ModTime(), w.mtime)
			continue
		}
		g, ok := got[p]
		if !ok {
			t.Errorf("%s: missing (want %s)", p, w.typ)
			continue
		}
		if g.typ != w.typ {
			t.Errorf("%s: type %s, want %s", p, g.typ, w.typ)
			continue
		}
		if w.typ == "file" {
			if strconv.FormatInt(g.size, 10) != w.size {
				t.Errorf("%s: size %d, want %s", p, g.size, w.size)
			}
			if g.sha != w.sha {
				t.Errorf("%s: sha256 %s, want %s", p, g.sha, w.sha)
			}
		}
		if w.typ == "symlink" {
			if want := strings.TrimPrefix(w.extra, "target="); g.target != want {
				t.Errorf("%s: target %q, want %q", p, g.target, want)
			}
		}
		if rr && w.typ != "symlink" {
			if fmt.Sprintf("%o", g.perm) != w.perm {
				t.Errorf("%s: perm %o, want %s", p, g.perm, w.perm)
			}
			if strconv.Itoa(int(g.uid)) != w.uid || strconv.Itoa(int(g.gid)) != w.gid {
				t.Errorf("%s: owner %d:%d, want %s:%s", p, g.uid, g.gid, w.uid, w.gid)
			}
		}
		if strings.HasPrefix(w.extra, "rdev=") {
			if want := strings.Fields(strings.TrimPrefix(w.extra, "rdev="))[0]; fmt.Sprintf("%d,%d", g.rdev[0], g.rdev[1]) != want {
				t.Errorf("%s: rdev %d,%d, want %s", p, g.rdev[0], g.rdev[1], want)
			}
		}
		checkTime(t, p, g.mtime, w.mtime)
	}
	for p, g := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: extra %s entry", p, g.typ)
		}
	}
}

func checkTime(t *testing.T, p string, got time.Time, want string) {
	t.Helper()
	// bsdtar prints all-zero dates as 1899-11-30 (-2211753600); they mean
	// "unset" (corpus-notes 2).
	if strings.HasPrefix(want, "UNSET") || want == "-2211753600" {
		if !got.IsZero() {
			t.Errorf("%s: mtime %v, want unset", p, got)
		}
		return
	}
	sec, err := strconv.ParseInt(want, 10, 64)
	if err != nil {
		return
	}
	if got.Unix() != sec {
		t.Errorf("%s: mtime %d (%v), want %d", p, got.Unix(), got, sec)
	}
}
