package mkiso

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// rebased converts img to bs and returns the new image's path.
func rebased(t *testing.T, img string, bs int) string {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	out, err := Rebase(f, fi.Size(), bs)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != int(fi.Size()) {
		t.Fatalf("rebased image is %d bytes, original %d", len(out), fi.Size())
	}
	orig, _ := os.ReadFile(img)
	for _, off := range []int{16 * 2048} {
		if got := binary.LittleEndian.Uint16(out[off+128:]); got != uint16(bs) {
			t.Errorf("block size %d", got)
		}
		if got, was := binary.BigEndian.Uint32(out[off+84:]), binary.BigEndian.Uint32(orig[off+84:]); got != was*uint32(2048/bs) {
			t.Errorf("volume size %d, was %d", got, was)
		}
	}
	p := filepath.Join(t.TempDir(), fmt.Sprintf("rebased%d.iso", bs))
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRebase converts genisoimage and xorriso -R -J images (symlinks, a
// name that needs a CE area, a tree deep enough for rr_moved) and our own
// 2048 image to 512 and 1024: pycdlib (Rock Ridge and Joliet) and The
// Sleuth Kit read the same names and bytes as from the original.
func TestRebase(t *testing.T) {
	src, files, _ := rrTree(t)
	makers := map[string]func(img string) []string{
		"genisoimage": func(img string) []string { return []string{"genisoimage", "-quiet", "-R", "-J", "-o", img, src} },
		"xorriso": func(img string) []string {
			return []string{"xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-rr_reloc_dir", "rr_moved", "-o", img, src}
		},
		"mkiso": nil,
	}
	for name, mk := range makers {
		t.Run(name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "orig.iso")
			if mk == nil {
				if _, err := WriteFile(img, os.DirFS(src), Options{RockRidge: true, Joliet: true}); err != nil {
					t.Fatal(err)
				}
			} else {
				args := mk(img)
				runTool(t, needTool(t, args[0]), args[1:]...)
			}
			rr := readPycdlib(t, img, "rr")
			jol := readPycdlib(t, img, "joliet")
			tsk := readSleuthKit(t, img)
			if !bytes.Equal(rr["/"+longName], files[longName]) || len(rr["/sub/long link"]) == 0 {
				t.Fatalf("the original lacks the CE name or the long symlink: %d entries", len(rr))
			}
			if len(tsk) == 0 || len(jol) == 0 {
				t.Fatalf("the Sleuth Kit or pycdlib/Joliet sees no files in the original")
			}
			if _, ok := rr["/rr_moved/level8/f.txt"]; !ok {
				t.Fatalf("the original has no rr_moved relocation")
			}
			for _, bs := range []int{512, 1024} {
				t.Run(fmt.Sprint(bs), func(t *testing.T) {
					out := rebased(t, img, bs)
					sameFiles(t, "pycdlib rr", rr, readPycdlib(t, out, "rr"), nil)
					sameFiles(t, "pycdlib joliet", jol, readPycdlib(t, out, "joliet"), nil)
					sameFiles(t, "sleuthkit", tsk, readSleuthKit(t, out), nil)
				})
			}
		})
	}
}

func TestRebaseRejects(t *testing.T) {
	src := makeTree(t, map[string][]byte{"A": {1}})
	var img memImage
	if _, err := Write(&img, os.DirFS(src), Options{BlockSize: 512}); err != nil {
		t.Fatal(err)
	}
	if _, err := Rebase(bytes.NewReader(img), int64(len(img)), 1024); err == nil {
		t.Error("rebasing a 512-block image: no error")
	}
	if _, err := Rebase(bytes.NewReader(img), int64(len(img)), 4096); err == nil {
		t.Error("block size 4096: no error")
	}
	if _, err := Rebase(bytes.NewReader(img[:30000]), 30000, 512); err == nil {
		t.Error("truncated image: no error")
	}
}
