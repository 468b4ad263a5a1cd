package mkiso

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

var longName = strings.Repeat("LongName-", 16) + "end.txt" // 151 characters: NM needs a CE

// rrTree is a tree that needs every Rock Ridge feature: mixed case,
// spaces, non-ASCII, a name that forces a continuation area, ISO name
// clashes, symlinks (one with a long target) and a tree 11 levels deep.
func rrTree(t *testing.T) (dir string, files map[string][]byte, links map[string]string) {
	files = map[string][]byte{
		"Mixed Case Name.txt": content("m", 3000),
		"naïve café.txt":      content("n", 513),
		longName:              content("l", 2049),
		"abc.txt":             content("abc1", 10),
		"ABC.txt":             content("abc2", 11),
		"empty":               nil,
		"sub/inner file.bin":  content("i", 70000),
	}
	deep := "deep"
	for i := 2; i <= 11; i++ {
		deep = path.Join(deep, fmt.Sprintf("level%d", i))
		files[deep+"/f.txt"] = content(deep, 100*i)
	}
	dir = makeTree(t, files)
	links = map[string]string{
		"link":          "Mixed Case Name.txt",
		"sub/abs":       "/etc/passwd",
		"sub/up":        "../sub/./inner file.bin",
		"sub/long link": strings.Repeat("component/", 25) + "x", // SL in a CE area
	}
	for p, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, filepath.FromSlash(p))); err != nil {
			t.Fatal(err)
		}
	}
	return dir, files, links
}

// jolietName is what our Joliet tree calls a file.
func jolietName(p string) string {
	parts := strings.Split(p, "/")
	for i, c := range parts {
		lim := 103
		if i == len(parts)-1 {
			lim = 101
		}
		if r := []rune(c); len(r) > lim {
			parts[i] = string(r[:lim])
		}
	}
	return "/" + strings.Join(parts, "/")
}

// relocatedPrefix is where rr_moved sits in rrTree: "level8" is at ISO
// level 9, so it is moved.
const relocatedPrefix = "/deep/level2/level3/level4/level5/level6/level7/"

// asRelocated names a path the way readers that ignore CL/RE see it.
func asRelocated(m map[string][]byte) map[string][]byte {
	out := map[string][]byte{}
	for p, b := range m {
		if rest, ok := strings.CutPrefix(p, relocatedPrefix+"level8/"); ok {
			p = "/rr_moved/level8/" + rest
		}
		out[p] = b
	}
	return out
}

func stripVersion(p string) string { return strings.ReplaceAll(p, ";1", "") }

// TestRockRidgeJoliet checks Rock Ridge and Joliet names, symlinks, CE
// areas and rr_moved relocation with pycdlib and The Sleuth Kit at every
// block size, and with isoinfo -R/-J, bsdtar and 7-Zip at 2048.
func TestRockRidgeJoliet(t *testing.T) {
	src, files, links := rrTree(t)
	rrWant := slashed(files)
	for p, target := range links {
		rrWant["/"+p] = []byte("->" + target)
	}
	jolWant := map[string][]byte{}
	for p, b := range files {
		jolWant[jolietName(p)] = b
	}
	for _, bs := range blockSizes {
		t.Run(fmt.Sprint(bs), func(t *testing.T) {
			img, m := build(t, src, Options{BlockSize: bs, RockRidge: true, Joliet: true, VolumeID: "Test Volume"})
			checkManifest(t, img, m, files)
			checkRecordsInSectors(t, img)
			// pycdlib ignores CL/RE and walks rr_moved as a plain directory.
			sameFiles(t, "pycdlib rr", asRelocated(rrWant), readPycdlib(t, img, "rr"), nil)
			sameFiles(t, "pycdlib joliet", jolWant, readPycdlib(t, img, "joliet"), stripVersion)
			sameFiles(t, "sleuthkit", jolWant, readSleuthKit(t, img), nil)
			if bs != 2048 {
				return
			}
			var rrPaths, jolPaths []string
			for p := range asRelocated(slashed(files)) {
				rrPaths = append(rrPaths, p)
			}
			for p := range files {
				jolPaths = append(jolPaths, jolietName(p)+";1")
			}
			sameFiles(t, "isoinfo -R", asRelocated(slashed(files)), readIsoinfo(t, img, "-R", rrPaths), nil)
			sameFiles(t, "isoinfo -J", jolWant, readIsoinfo(t, img, "-J", jolPaths), stripVersion)
			listing := strings.Join(listIsoinfo(t, img, "-R"), "\n") + "\n"
			for p := range asRelocated(rrWant) {
				if !strings.Contains(listing, p+"\n") {
					t.Errorf("isoinfo -R -f does not list %s", p)
				}
			}
			// libarchive follows CL/RE: it sees the original tree.
			sameFiles(t, "bsdtar", rrWant, readBsdtar(t, img), nil)
			sameFiles(t, "7zz", jolWant, read7zz(t, img), nil)
		})
	}
}

// TestCEChain: a symlink target longer than a block needs a chain of
// continuation areas; libarchive follows it (pycdlib does not).
func TestCEChain(t *testing.T) {
	src := makeTree(t, map[string][]byte{"f": {1}})
	target := strings.Repeat("abcdefgh/", 330) + "end" // 2973 bytes
	if err := os.Symlink(target, filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	img, _ := build(t, src, Options{RockRidge: true})
	got := readBsdtar(t, img)
	if string(got["/link"]) != "->"+target {
		t.Errorf("bsdtar reads link as %.80q…", got["/link"])
	}
}

// TestMapFS: an fs.FS that is not a directory (fstest.MapFS, which also
// implements fs.ReadLinkFS) works, symlinks included.
func TestMapFS(t *testing.T) {
	mt := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	src := fstest.MapFS{
		"a/b.txt":  {Data: content("b", 1500), Mode: 0o640, ModTime: mt},
		"a/ln":     {Data: []byte("b.txt"), Mode: fs.ModeSymlink | 0o777},
		"top.bin":  {Data: content("t", 5000), ModTime: mt},
		"zero.dat": {},
	}
	img := filepath.Join(t.TempDir(), "map.iso")
	m, err := WriteFile(img, src, Options{BlockSize: 512, RockRidge: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Files) != 3 {
		t.Errorf("manifest lists %d files", len(m.Files))
	}
	want := map[string][]byte{"/a/b.txt": src["a/b.txt"].Data, "/a/ln": []byte("->b.txt"), "/top.bin": src["top.bin"].Data, "/zero.dat": {}}
	sameFiles(t, "pycdlib rr", want, readPycdlib(t, img, "rr"), nil)
}
