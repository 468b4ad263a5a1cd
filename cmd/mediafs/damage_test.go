package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The damage verb, and ls and extract on damaged directories, on images
// made by real tools (mkfs.fat and mcopy; genisoimage), with bad areas
// given as GNU ddrescue writes its mapfile. The expected damage is worked
// out from The Sleuth Kit's reading of the FAT images (fsstat, fls, istat)
// and from isoinfo's and TSK's reading of the ISO images, never from
// mediafs.

// badArea is one non-finished block of a mapfile.
type badArea struct {
	off, n int64
	status byte // - / * ?
}

// writeMapfile writes a mapfile as GNU ddrescue 1.27 does: comments, the
// current-position line, then "pos size status" lines in hexadecimal that
// cover the whole image.
func writeMapfile(t *testing.T, path string, size int64, bad []badArea) {
	t.Helper()
	sort.Slice(bad, func(i, j int) bool { return bad[i].off < bad[j].off })
	var b strings.Builder
	b.WriteString("# Mapfile. Created by GNU ddrescue version 1.27\n")
	b.WriteString("# Command line: ddrescue -d -r3 /dev/sdc rescued.img rescued.map\n")
	b.WriteString("# Start time:   2025-01-02 03:04:05\n# Current time: 2025-01-02 03:44:05\n# Finished\n")
	b.WriteString("# current_pos  current_status  current_pass\n")
	fmt.Fprintf(&b, "0x%08X     +               3\n", size)
	b.WriteString("#      pos        size  status\n")
	var pos int64
	for _, a := range bad {
		if a.off < pos {
			t.Fatalf("bad areas overlap at %#x", a.off)
		}
		if a.off > pos {
			fmt.Fprintf(&b, "0x%08X  0x%08X  +\n", pos, a.off-pos)
		}
		fmt.Fprintf(&b, "0x%08X  0x%08X  %c\n", a.off, a.n, a.status)
		pos = a.off + a.n
	}
	if pos < size {
		fmt.Fprintf(&b, "0x%08X  0x%08X  +\n", pos, size-pos)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// damageLine is a line of `damage --json`, as compared by the tests.
type damageLine struct {
	Path        string     `json:"path"`
	Kind        string     `json:"kind"`
	Size        int64      `json:"size"`
	Ranges      [][2]int64 `json:"ranges"`
	LostSectors *int64     `json:"lost_sectors"`
	LostEntries *int64     `json:"lost_entries"`
	Note        string     `json:"note"`
}

func (d damageLine) key() string {
	s := fmt.Sprintf("%s %s size=%d ranges=%v", d.Kind, d.Path, d.Size, d.Ranges)
	if d.LostSectors != nil {
		s += fmt.Sprintf(" lost_sectors=%d lost_entries=%d", *d.LostSectors, *d.LostEntries)
	}
	return s
}

func dirLine(path string, size int64, ranges [][2]int64, sectors, entries int64) damageLine {
	return damageLine{Path: path, Kind: "dir", Size: size, Ranges: ranges, LostSectors: &sectors, LostEntries: &entries}
}

// runDamage runs `damage --json` and returns its lines by path.
func runDamage(t *testing.T, mapfile, img string, extra ...string) map[string]damageLine {
	t.Helper()
	args := append([]string{"damage", "--json", "--map", mapfile}, extra...)
	stdout, stderr, code := mediafsRun(t, append(args, img)...)
	if code != exitOK {
		t.Fatalf("damage: exit %d: %s", code, stderr)
	}
	got := map[string]damageLine{}
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if l == "" {
			continue
		}
		var d damageLine
		if err := json.Unmarshal([]byte(l), &d); err != nil {
			t.Fatalf("damage --json line %q: %v", l, err)
		}
		if _, dup := got[d.Path]; dup {
			t.Errorf("%s reported twice", d.Path)
		}
		got[d.Path] = d
	}
	return got
}

func compareDamage(t *testing.T, got map[string]damageLine, want []damageLine) {
	t.Helper()
	var g, w []string
	for _, d := range got {
		g = append(g, d.key())
	}
	for _, d := range want {
		w = append(w, d.key())
	}
	sort.Strings(g)
	sort.Strings(w)
	if !slices.Equal(g, w) {
		t.Errorf("damage report differs\n got:\n  %s\nwant:\n  %s", strings.Join(g, "\n  "), strings.Join(w, "\n  "))
	}
}

// tool runs a program with MTOOLS_SKIP_CHECK set and returns its output.
func tool(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1", "TZ=UTC")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// tskFAT is The Sleuth Kit's view of a FAT image.
type tskFAT struct {
	img          string
	ss, cs       int64
	fat          [2][2]int64 // sector ranges of FAT 0 and FAT 1
	root         [2]int64    // FAT12/16 root directory sectors
	clusterArea  int64       // first sector of cluster 2
	dataArea     int64       // first sector of the data area (TSK's inode base)
	fsInfo, bkup int64       // FAT32, else -1
	inodes       map[string]int64
}

func readTSKFAT(t *testing.T, img string) *tskFAT {
	t.Helper()
	v := &tskFAT{img: img, fsInfo: -1, bkup: -1, inodes: map[string]int64{}}
	rng := regexp.MustCompile(`^\*+ ([A-Za-z0-9 ]+): (\d+)(?: - (\d+))?$`)
	for _, l := range strings.Split(tool(t, "fsstat", img), "\n") {
		l = strings.TrimSpace(l)
		if m := rng.FindStringSubmatch(l); m != nil {
			a, _ := strconv.ParseInt(m[2], 10, 64)
			b, _ := strconv.ParseInt(m[3], 10, 64)
			switch m[1] {
			case "FAT 0":
				v.fat[0] = [2]int64{a, b}
			case "FAT 1":
				v.fat[1] = [2]int64{a, b}
			case "Root Directory":
				v.root = [2]int64{a, b}
			case "Cluster Area":
				v.clusterArea = a
			case "Data Area":
				v.dataArea = a
			case "FS Info Sector":
				v.fsInfo = a
			case "Backup Boot Sector":
				v.bkup = a
			}
		}
		if s, ok := strings.CutPrefix(l, "Sector Size: "); ok {
			v.ss, _ = strconv.ParseInt(s, 10, 64)
		}
		if s, ok := strings.CutPrefix(l, "Cluster Size: "); ok {
			v.cs, _ = strconv.ParseInt(s, 10, 64)
		}
	}
	ent := regexp.MustCompile(`^([rd])/[rd] (\d+):\t(.*)$`)
	for _, l := range strings.Split(tool(t, "fls", "-r", "-p", img), "\n") {
		m := ent.FindStringSubmatch(l)
		if m == nil || strings.HasPrefix(m[3], "$") || strings.HasSuffix(m[3], "(Volume Label Entry)") {
			continue
		}
		n, _ := strconv.ParseInt(m[2], 10, 64)
		v.inodes["/"+m[3]] = n
	}
	if v.ss == 0 || v.cs == 0 || v.fat[1][1] == 0 || v.clusterArea == 0 {
		t.Fatalf("could not read the layout from fsstat: %+v", v)
	}
	return v
}

// istat returns an inode's sectors in file order, its size and its short
// name.
func (v *tskFAT) istat(t *testing.T, inode int64) (sectors []int64, size int64, short string) {
	t.Helper()
	out := tool(t, "istat", v.img, strconv.FormatInt(inode, 10))
	_, list, _ := strings.Cut(out, "Sectors:")
	for _, f := range strings.Fields(list) {
		n, err := strconv.ParseInt(f, 10, 64)
		if err == nil && n != 0 { // TSK pads the last line with zeros
			sectors = append(sectors, n)
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if s, ok := strings.CutPrefix(l, "Size: "); ok {
			size, _ = strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		}
		if s, ok := strings.CutPrefix(l, "Name: "); ok {
			short = strings.TrimSpace(s)
		}
	}
	return sectors, size, short
}

func (v *tskFAT) inode(t *testing.T, path string) int64 {
	t.Helper()
	n, ok := v.inodes[path]
	if !ok {
		t.Fatalf("fls does not list %s", path)
	}
	return n
}

// makeFATImage formats an image with mkfs.fat and fills it with mcopy: a
// large file first (so that its cluster chain fills whole FAT sectors), a
// directory of 60 long names that spans several clusters, and a nested
// directory.
func makeFATImage(t *testing.T, dir string, sizeMiB int, mkfs ...string) (img string, big []byte) {
	t.Helper()
	src := filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "DOCS"), 0o755)
	os.MkdirAll(filepath.Join(src, "SUB", "DEEP"), 0o755)
	big = make([]byte, 1_600_000)
	for i := range big {
		big[i] = byte(i*7 + i/4096)
	}
	os.WriteFile(filepath.Join(src, "BIG.BIN"), big, 0o644)
	for i := 1; i <= 60; i++ {
		os.WriteFile(filepath.Join(src, "DOCS", fmt.Sprintf("a long file name number %d.txt", i)), fmt.Appendf(nil, "file %d\n", i), 0o644)
	}
	os.WriteFile(filepath.Join(src, "SUB", "DEEP", "LEAF.TXT"), []byte("leaf\n"), 0o644)
	img = filepath.Join(dir, "rescued.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, int64(sizeMiB)<<20); err != nil {
		t.Fatal(err)
	}
	tool(t, "mkfs.fat", append(mkfs, img)...)
	tool(t, "mcopy", "-s", "-i", img, filepath.Join(src, "BIG.BIN"), "::/")
	tool(t, "mcopy", "-s", "-i", img, filepath.Join(src, "DOCS"), "::/")
	tool(t, "mcopy", "-s", "-i", img, filepath.Join(src, "SUB"), "::/")
	return img, big
}

func TestDamageFATAgainstSleuthKit(t *testing.T) {
	need(t, "mkfs.fat", "mcopy", "fsstat", "fls", "istat")
	for _, c := range []struct {
		name    string
		sizeMiB int
		mkfs    []string
		bits    int64 // FAT entry width
	}{
		{"fat12", 4, []string{"-F", "12", "-s", "4"}, 12},
		{"fat16", 20, []string{"-F", "16", "-s", "4"}, 16},
		{"fat32", 80, []string{"-F", "32", "-s", "2"}, 32},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			img, big := makeFATImage(t, dir, c.sizeMiB, c.mkfs...)
			st, _ := os.Stat(img)
			v := readTSKFAT(t, img)
			ss := v.ss
			bigSecs, bigSize, _ := v.istat(t, v.inode(t, "/BIG.BIN"))
			docs, docsSize, _ := v.istat(t, v.inode(t, "/DOCS"))
			if bigSize != int64(len(big)) || len(docs) < 8 {
				t.Fatalf("TSK: BIG.BIN %d bytes, DOCS %d sectors", bigSize, len(docs))
			}
			var rootSecs []int64
			if c.bits == 32 {
				rootSecs, _, _ = v.istat(t, 2)
			} else {
				for s := v.root[0]; s <= v.root[1]; s++ {
					rootSecs = append(rootSecs, s)
				}
			}

			// 1. A sector of BIG.BIN, one of DOCS, one of each FAT copy
			// (FAT 2 stands in for FAT 1, whose sector holds BIG.BIN's
			// chain), the root directory's last (empty) sector; on FAT32
			// also the FSInfo and backup boot sectors.
			bad := []badArea{
				{bigSecs[100] * ss, ss, '-'},
				{docs[5] * ss, ss, '/'},
				{(v.fat[0][0] + 2) * ss, ss, '*'},
				{v.fat[1][1] * ss, ss, '?'},
				{rootSecs[len(rootSecs)-1] * ss, ss, '-'},
			}
			want := []damageLine{
				{Path: "/BIG.BIN", Kind: "file", Size: bigSize, Ranges: [][2]int64{{100 * ss, ss}}},
				dirLine("/DOCS", docsSize, [][2]int64{{5 * ss, ss}}, 1, ss/32),
				{Path: "<FAT 1>", Kind: "metadata", Size: (v.fat[0][1] - v.fat[0][0] + 1) * ss, Ranges: [][2]int64{{(v.fat[0][0] + 2) * ss, ss}}},
				{Path: "<FAT 2>", Kind: "metadata", Size: (v.fat[1][1] - v.fat[1][0] + 1) * ss, Ranges: [][2]int64{{v.fat[1][1] * ss, ss}}},
				dirLine("/", int64(len(rootSecs))*ss, [][2]int64{{int64(len(rootSecs)-1) * ss, ss}}, 1, ss/32),
			}
			if c.bits == 32 {
				bad = append(bad, badArea{v.fsInfo * ss, ss, '-'}, badArea{v.bkup * ss, ss, '-'})
				want = append(want,
					damageLine{Path: "<FSInfo sector>", Kind: "metadata", Size: ss, Ranges: [][2]int64{{v.fsInfo * ss, ss}}},
					damageLine{Path: "<backup boot sector>", Kind: "metadata", Size: ss, Ranges: [][2]int64{{v.bkup * ss, ss}}})
			}
			mapfile := filepath.Join(dir, "rescued.map")
			writeMapfile(t, mapfile, st.Size(), bad)
			got := runDamage(t, mapfile, img)
			compareDamage(t, got, want)
			if n := got["<FAT 1>"].Note; !strings.Contains(n, "another FAT copy") {
				t.Errorf("<FAT 1> note %q: want it to say FAT 2 holds the entries", n)
			}

			t.Run("ls and extract", func(t *testing.T) {
				// Only the data sectors: extract reads the active FAT.
				m := filepath.Join(t.TempDir(), "data.map")
				writeMapfile(t, m, st.Size(), []badArea{{bigSecs[100] * ss, ss, '-'}, {docs[5] * ss, ss, '/'}})
				checkDamagedDirCLI(t, v, img, m, docs[5], big, bigSecs[100])
			})

			// 2. The same sector of both FATs, full of BIG.BIN's chain:
			// BIG.BIN is lost from the first cluster whose entry is there.
			var clusters []int64
			spc := v.cs / ss
			for i := 0; i < len(bigSecs); i += int(spc) {
				clusters = append(clusters, (bigSecs[i]-v.clusterArea)/spc+2)
			}
			// Cluster cl's entry is bits wide at bit cl*bits of the FAT
			// (fatgen103); is any of its bytes in the FAT's sector 1?
			entryBad := func(cl int64) bool {
				lo := cl * c.bits / 8
				hi := (cl*c.bits + c.bits + 7) / 8
				return lo < 2*ss && hi > ss
			}
			first := -1
			for i := 0; i+1 < len(clusters); i++ {
				if entryBad(clusters[i]) {
					first = i
					break
				}
			}
			if first < 0 {
				t.Fatal("BIG.BIN's chain does not run through the second FAT sector")
			}
			mapped := int64(first+1) * v.cs
			bad2 := []badArea{{(v.fat[0][0] + 1) * ss, ss, '-'}, {(v.fat[1][0] + 1) * ss, ss, '-'}}
			writeMapfile(t, mapfile, st.Size(), bad2)
			got = runDamage(t, mapfile, img)
			compareDamage(t, got, []damageLine{
				{Path: "<FAT 1>", Kind: "metadata", Size: (v.fat[0][1] - v.fat[0][0] + 1) * ss, Ranges: [][2]int64{{(v.fat[0][0] + 1) * ss, ss}}},
				{Path: "<FAT 2>", Kind: "metadata", Size: (v.fat[1][1] - v.fat[1][0] + 1) * ss, Ranges: [][2]int64{{(v.fat[1][0] + 1) * ss, ss}}},
				{Path: "/BIG.BIN", Kind: "file", Size: bigSize, Ranges: [][2]int64{{mapped, bigSize - mapped}}},
			})
		})
	}
}

// checkDamagedDirCLI: ls lists what DOCS's readable sectors hold and warns
// about the directory; extract --keep-going writes those files and
// reports the directory's lost bytes. The entries expected are worked out
// from TSK: a FAT inode number is the entry's slot counted from the data
// area (TSK's FATFS_SECT_2_INODE: (sector - data area) * slots per sector
// + 3); a 30-character long name takes 3 slots before its short entry. An
// entry whose short entry is in the bad sector is lost; one whose long
// name starts there shows its short name (istat's "Name").
func checkDamagedDirCLI(t *testing.T, v *tskFAT, img, mapfile string, badSec int64, big []byte, bigBad int64) {
	perSector := v.ss / 32
	slotSector := func(slot int64) int64 { return v.dataArea + slot/perSector }
	var want []string
	for p, ino := range v.inodes {
		name, ok := strings.CutPrefix(p, "/DOCS/")
		if !ok {
			continue
		}
		slot := ino - 3
		lfnSlots := int64((len(name) + 12) / 13)
		switch {
		case slotSector(slot) == badSec:
			// lost
		case slotSector(slot-lfnSlots) == badSec || slotSector(slot-1) == badSec:
			_, _, short := v.istat(t, ino)
			want = append(want, short)
		default:
			want = append(want, name)
		}
	}
	sort.Strings(want)
	if len(want) >= 60 || len(want) < 40 {
		t.Fatalf("%d entries expected after the bad sector: the layout is not what the test assumes", len(want))
	}

	stdout, stderr, code := mediafsRun(t, "ls", "--map", mapfile, img, "/DOCS")
	got := strings.Split(strings.TrimSpace(stdout), "\n")
	sort.Strings(got)
	if code != exitFailed || !slices.Equal(got, want) {
		t.Errorf("ls of the damaged directory: exit %d\n got %q\nwant %q", code, got, want)
	}
	if !strings.Contains(stderr, "warning") || !strings.Contains(stderr, "/DOCS") || !strings.Contains(stderr, fmt.Sprintf("sector %d: bad sector", badSec)) {
		t.Errorf("ls warning %q does not name the directory and the sector", stderr)
	}

	dest := filepath.Join(t.TempDir(), "out")
	report := filepath.Join(t.TempDir(), "report.json")
	_, stderr, code = mediafsRun(t, "extract", "--keep-going", "--map", mapfile, "--report", report, img, dest)
	if code != exitFailed {
		t.Fatalf("extract --keep-going: exit %d: %s", code, stderr)
	}
	var files []string
	ents, _ := os.ReadDir(filepath.Join(dest, "DOCS"))
	for _, e := range ents {
		files = append(files, e.Name())
	}
	if !slices.Equal(files, want) {
		t.Errorf("extracted DOCS\n got %q\nwant %q", files, want)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "SUB", "DEEP", "LEAF.TXT")); err != nil || string(b) != "leaf\n" {
		t.Errorf("an undamaged file: %q %v", b, err)
	}
	lines := map[string]reportEntry{}
	rb, _ := os.ReadFile(report)
	for _, l := range bytes.Split(bytes.TrimSpace(rb), []byte("\n")) {
		var r reportEntry
		if err := json.Unmarshal(l, &r); err != nil {
			t.Fatalf("report line %q: %v", l, err)
		}
		lines[r.Path] = r
	}
	bigSecs, _, _ := v.istat(t, v.inode(t, "/BIG.BIN"))
	bigIdx := int64(slices.Index(bigSecs, bigBad))
	docs, _, _ := v.istat(t, v.inode(t, "/DOCS"))
	docsIdx := int64(slices.Index(docs, badSec))
	if r := lines["/DOCS"]; !slices.Equal(r.Ranges, [][2]int64{{docsIdx * v.ss, v.ss}}) || !strings.Contains(r.Error, fmt.Sprintf("sector %d: bad sector", badSec)) {
		t.Errorf("report for /DOCS: %+v", r)
	}
	if r := lines["/BIG.BIN"]; !slices.Equal(r.Ranges, [][2]int64{{bigIdx * v.ss, v.ss}}) {
		t.Errorf("report for /BIG.BIN: %+v", r)
	}
	got2, _ := os.ReadFile(filepath.Join(dest, "BIG.BIN"))
	hole := bigIdx * v.ss
	if len(got2) != len(big) || !bytes.Equal(got2[:hole], big[:hole]) || !bytes.Equal(got2[hole+v.ss:], big[hole+v.ss:]) {
		t.Errorf("BIG.BIN: the readable bytes were not all extracted")
	}
}

type reportEntry struct {
	Path   string     `json:"path"`
	Error  string     `json:"error"`
	Ranges [][2]int64 `json:"ranges"`
}

// isoEntry is one line of isoinfo -l.
type isoEntry struct {
	dir    bool
	size   int64
	extent int64
}

// isoinfoTree reads `isoinfo -l` (with -R or -J): path → entry.
func isoinfoTree(t *testing.T, img string, ns string) map[string]isoEntry {
	t.Helper()
	out := tool(t, "isoinfo", "-l", ns, "-i", img)
	line := regexp.MustCompile(`^([d-])\S*\s+\d+\s+\d+\s+\d+\s+(\d+)\s+\S+\s+\d+\s+\d+\s+\[\s*(\d+)\s+\d+\]\s+(.*?)\s*$`)
	tree := map[string]isoEntry{}
	cur := "/"
	for _, l := range strings.Split(out, "\n") {
		if d, ok := strings.CutPrefix(l, "Directory listing of "); ok {
			cur = strings.TrimSpace(d)
			continue
		}
		m := line.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		size, _ := strconv.ParseInt(m[2], 10, 64)
		ext, _ := strconv.ParseInt(m[3], 10, 64)
		name := m[4]
		switch name {
		case ".":
			if cur == "/" {
				tree["/"] = isoEntry{dir: true, size: size, extent: ext}
			}
			continue
		case "..":
			continue
		}
		tree[cur+name] = isoEntry{dir: m[1] == "d", size: size, extent: ext}
	}
	return tree
}

func makeISOImage(t *testing.T, dir string) (img string, src string) {
	t.Helper()
	src = filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "docs"), 0o755)
	os.MkdirAll(filepath.Join(src, "deep", "er"), 0o755)
	big := make([]byte, 300000)
	for i := range big {
		big[i] = byte(i * 13)
	}
	os.WriteFile(filepath.Join(src, "big.bin"), big, 0o644)
	os.WriteFile(filepath.Join(src, "boot.img"), bytes.Repeat([]byte{0xB0}, 4096), 0o644)
	for i := 1; i <= 80; i++ {
		os.WriteFile(filepath.Join(src, "docs", fmt.Sprintf("a rather long file name number %d.txt", i)), fmt.Appendf(nil, "file %d\n", i), 0o644)
	}
	os.WriteFile(filepath.Join(src, "deep", "er", "leaf.txt"), []byte("leaf\n"), 0o644)
	img = filepath.Join(dir, "rescued.iso")
	tool(t, "genisoimage", "-quiet", "-R", "-J", "-b", "boot.img", "-c", "boot.cat", "-no-emul-boot", "-boot-load-size", "4", "-o", img, src)
	return img, src
}

func TestDamageISOAgainstIsoinfo(t *testing.T) {
	need(t, "genisoimage", "isoinfo", "fsstat")
	dir := t.TempDir()
	img, _ := makeISOImage(t, dir)
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	size := int64(len(raw))
	const sec = 2048
	rr := isoinfoTree(t, img, "-R")
	jol := isoinfoTree(t, img, "-J")
	var catalog int64
	if m := regexp.MustCompile(`boot catalog is in sector (\d+)`).FindStringSubmatch(tool(t, "isoinfo", "-d", "-i", img)); m != nil {
		catalog, _ = strconv.ParseInt(m[1], 10, 64)
	} else {
		t.Fatal("isoinfo names no boot catalog")
	}
	// TSK names a path table of the primary descriptor first; which type
	// it is (L: ECMA-119 8.4.14, bytes 140-143 little-endian; M: 8.4.16,
	// bytes 148-151 big-endian) and its size (8.4.13, bytes 132-135) come
	// from the descriptor's bytes.
	var ptSector int64
	if m := regexp.MustCompile(`Path Table Location: (\d+)-`).FindStringSubmatch(tool(t, "fsstat", img)); m != nil {
		ptSector, _ = strconv.ParseInt(m[1], 10, 64)
	} else {
		t.Fatal("fsstat names no path table")
	}
	ptSize := int64(binary.LittleEndian.Uint32(raw[16*sec+132:]))
	var ptName string
	switch ptSector {
	case int64(binary.LittleEndian.Uint32(raw[16*sec+140:])):
		ptName = "<L path table>"
	case int64(binary.BigEndian.Uint32(raw[16*sec+148:])):
		ptName = "<M path table>"
	default:
		t.Fatalf("TSK's path table at sector %d is neither the L nor the M table of the PVD", ptSector)
	}
	// The descriptor after the PVD must be the El Torito boot record
	// (ECMA-119 8.2: type 0) for scenario B.
	if raw[17*sec] != 0 || string(raw[17*sec+1:17*sec+6]) != "CD001" {
		t.Fatal("sector 17 is not the boot record")
	}
	docs, jdocs, bigE, bootImg, bootCat := rr["/docs"], jol["/docs"], rr["/big.bin"], rr["/boot.img"], rr["/boot.cat"]
	if !docs.dir || docs.size < 3*sec || !jdocs.dir || jdocs.extent == docs.extent || bootImg.extent == 0 || bootCat.extent != catalog {
		t.Fatalf("layout not as assumed: docs %+v, Joliet docs %+v, boot.img %+v, boot.cat %+v (catalog %d)", docs, jdocs, bootImg, bootCat, catalog)
	}
	mapfile := filepath.Join(dir, "rescued.map")
	sect := func(s int64, st byte) badArea { return badArea{s * sec, sec, st} }
	full := func(s int64) [][2]int64 { return [][2]int64{{s * sec, sec}} }

	t.Run("files, directories, path table, boot image", func(t *testing.T) {
		writeMapfile(t, mapfile, size, []badArea{
			sect(bigE.extent+10, '-'), sect(docs.extent+2, '/'), sect(jdocs.extent+1, '*'),
			sect(ptSector, '-'), sect(bootImg.extent, '?'),
		})
		compareDamage(t, runDamage(t, mapfile, img), []damageLine{
			{Path: "/big.bin", Kind: "file", Size: bigE.size, Ranges: [][2]int64{{10 * sec, sec}}},
			dirLine("/docs", docs.size, [][2]int64{{2 * sec, sec}}, 1, sec/34),
			{Path: "<Joliet directory /docs>", Kind: "metadata", Size: jdocs.size, Ranges: full(jdocs.extent + 1)},
			{Path: ptName, Kind: "metadata", Size: ptSize, Ranges: [][2]int64{{ptSector * sec, ptSize}}},
			{Path: "/boot.img", Kind: "file", Size: bootImg.size, Ranges: [][2]int64{{0, sec}}},
			{Path: "<El Torito boot image 1>", Kind: "metadata", Size: bootImg.size, Ranges: full(bootImg.extent)},
		})

		// ls lists the records of the readable sectors: those whose Rock
		// Ridge name lies outside the bad sector of the directory.
		var want []string
		for p := range rr {
			name, ok := strings.CutPrefix(p, "/docs/")
			if !ok {
				continue
			}
			at := int64(bytes.Index(raw[docs.extent*sec:(docs.extent*sec+docs.size)], []byte(name)))
			if at < 0 {
				t.Fatalf("no record holds %q", name)
			}
			if at/sec != 2 {
				want = append(want, name)
			}
		}
		sort.Strings(want)
		stdout, stderr, code := mediafsRun(t, "ls", "--map", mapfile, img, "docs")
		got := strings.Split(strings.TrimSpace(stdout), "\n")
		sort.Strings(got)
		if code != exitFailed || !slices.Equal(got, want) || len(want) == 80 {
			t.Errorf("ls: exit %d, %d names, want %d", code, len(got), len(want))
		}
		if !strings.Contains(stderr, fmt.Sprintf("readdir /docs: directory damaged: sector %d: bad sector", docs.extent+2)) {
			t.Errorf("ls warning %q", stderr)
		}
	})

	t.Run("boot record", func(t *testing.T) {
		// Without the boot record the catalog cannot be found; boot.cat
		// is a file of the tree all the same.
		writeMapfile(t, mapfile, size, []badArea{sect(17, '-'), sect(catalog, '-')})
		compareDamage(t, runDamage(t, mapfile, img), []damageLine{
			{Path: "<volume descriptor at sector 17>", Kind: "metadata", Size: sec, Ranges: full(17)},
			{Path: "/boot.cat", Kind: "file", Size: bootCat.size, Ranges: [][2]int64{{0, sec}}},
		})
	})

	t.Run("boot catalog", func(t *testing.T) {
		writeMapfile(t, mapfile, size, []badArea{sect(catalog, '-')})
		compareDamage(t, runDamage(t, mapfile, img), []damageLine{
			{Path: "<El Torito boot catalog>", Kind: "metadata", Size: sec, Ranges: full(catalog)},
			{Path: "/boot.cat", Kind: "file", Size: bootCat.size, Ranges: [][2]int64{{0, sec}}},
		})
	})

	t.Run("primary volume descriptor", func(t *testing.T) {
		// The tree is read through the Joliet descriptor: its docs
		// directory is the one that counts now.
		writeMapfile(t, mapfile, size, []badArea{sect(16, '-'), sect(jdocs.extent+1, '-')})
		got := runDamage(t, mapfile, img)
		compareDamage(t, got, []damageLine{
			{Path: "<primary volume descriptor>", Kind: "metadata", Size: sec, Ranges: full(16)},
			dirLine("/docs", jdocs.size, [][2]int64{{sec, sec}}, 1, sec/34),
		})
		if n := got["<primary volume descriptor>"].Note; !strings.Contains(n, "Joliet") {
			t.Errorf("note %q does not say the Joliet tree is read", n)
		}
	})
}

// Usage and open failures: no map is a usage error; an image whose file
// system cannot be recognised because the map says its first sectors
// were not read is exit 3, and says so; a clean map is exit 0 with no
// objects.
func TestDamageExitStatuses(t *testing.T) {
	need(t, "genisoimage")
	dir := t.TempDir()
	img, _ := makeISOImage(t, dir)
	st, _ := os.Stat(img)
	if _, stderr, code := mediafsRun(t, "damage", img); code != exitUsage || !strings.Contains(stderr, "--map") {
		t.Errorf("damage without --map: exit %d %q", code, stderr)
	}
	mapfile := filepath.Join(dir, "m.map")
	writeMapfile(t, mapfile, st.Size(), nil)
	stdout, stderr, code := mediafsRun(t, "damage", "--map", mapfile, img)
	if code != exitOK || stdout != "" || !strings.Contains(stderr, "no file, directory or metadata is hit") {
		t.Errorf("clean map: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	writeMapfile(t, mapfile, st.Size(), []badArea{{0, 40 * 2048, '?'}})
	if _, stderr, code := mediafsRun(t, "damage", "--map", mapfile, img); code != exitNoImage || !strings.Contains(stderr, "cannot be recognised") {
		t.Errorf("unreadable descriptors: exit %d %q", code, stderr)
	}
	// The human form: one line per object, the kind first.
	writeMapfile(t, mapfile, st.Size(), []badArea{{16 * 2048, 2048, '-'}})
	stdout, _, code = mediafsRun(t, "damage", "--map", mapfile, img)
	if code != exitOK || !regexp.MustCompile(`(?m)^metadata +<primary volume descriptor> +2048 bytes at image bytes \[32768, \+2048\)`).MatchString(stdout) {
		t.Errorf("human output: exit %d\n%s", code, stdout)
	}
}

// A FAT volume in an MBR partition: the map counts bytes of the whole
// image, the file ranges are offsets in the files, and metadata ranges are
// image offsets. The layout comes from sfdisk and mkfs.fat, the
// expectations from TSK reading the partition (-o).
func TestDamagePartitioned(t *testing.T) {
	need(t, "sfdisk", "mkfs.fat", "mcopy", "fsstat", "fls", "istat")
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	os.WriteFile(img, nil, 0o644)
	os.Truncate(img, 24<<20)
	const start = 2048 // sectors
	cmd := exec.Command("sfdisk", "-q", img)
	cmd.Stdin = strings.NewReader(fmt.Sprintf("start=%d, size=40960, type=6\n", start))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	tool(t, "mkfs.fat", "-F", "16", "-s", "4", "--offset", strconv.Itoa(start), img, "20480")
	big := bytes.Repeat([]byte("partitioned "), 20000)
	src := filepath.Join(dir, "BIG.BIN")
	os.WriteFile(src, big, 0o644)
	tool(t, "mcopy", "-i", fmt.Sprintf("%s@@%d", img, start*512), src, "::/")

	// TSK's sectors are counted from the partition's start.
	inode := int64(-1)
	for _, l := range strings.Split(tool(t, "fls", "-o", strconv.Itoa(start), img), "\n") {
		if strings.HasSuffix(l, "\tBIG.BIN") {
			inode, _ = strconv.ParseInt(strings.TrimSuffix(strings.Fields(l)[1], ":"), 10, 64)
		}
	}
	out := tool(t, "istat", "-o", strconv.Itoa(start), img, strconv.FormatInt(inode, 10))
	_, list, _ := strings.Cut(out, "Sectors:")
	var secs []int64
	for _, f := range strings.Fields(list) {
		if n, _ := strconv.ParseInt(f, 10, 64); n != 0 {
			secs = append(secs, n)
		}
	}
	var fat1 [2]int64
	if m := regexp.MustCompile(`(?m)^\* FAT 1: (\d+) - (\d+)$`).FindStringSubmatch(tool(t, "fsstat", "-o", strconv.Itoa(start), img)); m != nil {
		fat1[0], _ = strconv.ParseInt(m[1], 10, 64)
		fat1[1], _ = strconv.ParseInt(m[2], 10, 64)
	}
	if len(secs) < 20 || fat1[1] == 0 {
		t.Fatalf("TSK: %d sectors of BIG.BIN, FAT 1 at %v", len(secs), fat1)
	}
	mapfile := filepath.Join(dir, "disk.map")
	writeMapfile(t, mapfile, 24<<20, []badArea{
		{100 * 512, 512, '-'},                  // before the partition: nothing
		{(start + fat1[0]) * 512, 512, '-'},    // the second FAT's first sector
		{(start + secs[10]) * 512, 512, '-'},   // BIG.BIN's eleventh sector
		{(start + 40960 + 10) * 512, 512, '-'}, // after the partition
	})
	compareDamage(t, runDamage(t, mapfile, img), []damageLine{
		{Path: "<FAT 2>", Kind: "metadata", Size: (fat1[1] - fat1[0] + 1) * 512, Ranges: [][2]int64{{(start + fat1[0]) * 512, 512}}},
		{Path: "/BIG.BIN", Kind: "file", Size: int64(len(big)), Ranges: [][2]int64{{10 * 512, 512}}},
	})
	if _, stderr, _ := mediafsRun(t, "damage", "--map", mapfile, img); !strings.Contains(stderr, "2048 bytes of bad areas (1024 bytes in the volume)") {
		t.Errorf("summary %q", stderr)
	}
	// The error of a read names the sector of the whole disk.
	if _, stderr, code := mediafsRun(t, "cat", "--map", mapfile, img, "BIG.BIN"); code != exitFailed || !strings.Contains(stderr, fmt.Sprintf("sector %d: bad sector", start+secs[10])) {
		t.Errorf("cat: exit %d %q", code, stderr)
	}
}
