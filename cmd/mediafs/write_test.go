package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, stderr, code := mediafsRun(t, args...)
	if code != 0 {
		t.Fatalf("mediafs %s: exit %d: %s", strings.Join(args, " "), code, stderr)
	}
	return out
}

// fsckClean runs fsck.fat -n on the volume at byte offset off of img and
// fails the test unless it finds nothing at all (dirty bit included).
func fsckClean(t *testing.T, img string, off, size int64) {
	t.Helper()
	need(t, "fsck.fat")
	vol := img
	if off != 0 || size != 0 {
		// fsck.fat has no offset option: copy the partition out (in the
		// kernel, with copy_file_range, not through this process's memory).
		vol = filepath.Join(t.TempDir(), "part.img")
		src, err := os.Open(img)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		dst, err := os.Create(vol)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := src.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		if n, err := io.Copy(dst, io.LimitReader(src, size)); err != nil || n != size {
			t.Fatalf("copying the partition out: %d of %d bytes, %v", n, size, err)
		}
		if err := dst.Close(); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command("fsck.fat", "-n", "-v", vol).CombinedOutput()
	if err != nil {
		t.Fatalf("fsck.fat -n: %v\n%s", err, out)
	}
	for _, bad := range []string{"Dirty bit", "differ", "Free cluster summary wrong", "lost", "Reclaim", "Orphan", "Bad", "invalid", "Invalid"} {
		if strings.Contains(string(out), bad) {
			t.Fatalf("fsck.fat -n reports %q:\n%s", bad, out)
		}
	}
}

func TestMkfsTypesAndSectorSizes(t *testing.T) {
	need(t, "fsck.fat", "mdir")
	for _, tc := range []struct {
		typ, size string
		ss        int
	}{
		{"fat12", "1440K", 512}, {"fat12", "4M", 2048}, {"fat16", "128M", 2048}, {"fat16", "64M", 512},
		{"fat16", "256M", 4096}, {"fat32", "600M", 512}, {"fat32", "2G", 2048}, {"fat32", "1G", 4096}, {"fat16", "32M", 1024},
	} {
		t.Run(fmt.Sprintf("%s-%s-%d", tc.typ, tc.size, tc.ss), func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "new.img")
			mustRun(t, "mkfs", "--type", tc.typ, "--size", tc.size, "--sector-size", fmt.Sprint(tc.ss), "--label", "NEWVOL", "--serial", "1234-ABCD", img)
			fsckClean(t, img, 0, 0)
			var in map[string]any
			json.Unmarshal([]byte(mustRun(t, "info", "--json", img)), &in)
			if in["fs"] != tc.typ || in["sector_size"] != float64(tc.ss) || in["label"] != "NEWVOL" || in["serial"] != "1234-ABCD" || in["dirty"] != false {
				t.Fatalf("info: %v", in)
			}
			if out := mtools(t, img, "mdir", "::/"); !strings.Contains(out, "NEWVOL") || !strings.Contains(out, "1234-ABCD") {
				t.Fatalf("mdir does not see the label and serial:\n%s", out)
			}
			if _, _, code := mediafsRun(t, "mkfs", "--type", tc.typ, "--size", tc.size, img); code == 0 {
				t.Fatal("mkfs over an existing image succeeded")
			}
		})
	}
}

func TestPutAndReadBackWithTools(t *testing.T) {
	need(t, "fsck.fat", "mcopy")
	src := writeTree(t, map[string]int{
		"README.TXT":                100,
		"readme.txt.bak":            3,
		"Mixed Case Name.Txt":       5000,
		"Ünïcödé – naïve £.txt":     513,
		"sub dir/deeper/file.c":     70000,
		"sub dir/empty":             0,
		"boot/EFI/BOOT/BOOTX64.EFI": 4096,
		"a-very-long-name-that-needs-several-vfat-slots-to-hold-it.dat": 1,
	})
	for _, tc := range []struct {
		typ string
		ss  int
	}{{"fat12", 512}, {"fat16", 2048}, {"fat32", 512}} {
		t.Run(fmt.Sprintf("%s-%d", tc.typ, tc.ss), func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "put.img")
			size := map[string]string{"fat12": "4M", "fat16": "64M", "fat32": "300M"}[tc.typ]
			mustRun(t, "mkfs", "--type", tc.typ, "--size", size, "--sector-size", fmt.Sprint(tc.ss), img)
			ents, _ := os.ReadDir(src)
			args := []string{"put", "-r", img}
			for _, e := range ents {
				args = append(args, filepath.Join(src, e.Name()))
			}
			mustRun(t, append(args, "/")...)
			fsckClean(t, img, 0, 0)
			compareWithSource(t, img, src) // our own reading
			out := t.TempDir()
			mtools(t, img, "mcopy", "-s", "-n", "::/", out)
			checkTree(t, src, out, "mcopy")
			if _, err := exec.LookPath("7zz"); err == nil {
				o7 := t.TempDir()
				sh(t, "", "7zz", "x", "-y", "-o"+o7, img)
				checkTree(t, src, o7, "7-Zip")
			}
		})
	}
}

// checkTree compares every file of src with its copy under dst.
func checkTree(t *testing.T, src, dst, who string) {
	t.Helper()
	filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if d.IsDir() {
			return nil
		}
		a, _ := os.ReadFile(p)
		b, err := os.ReadFile(filepath.Join(dst, strings.TrimPrefix(p, src)))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s reads %s differently: %v", who, strings.TrimPrefix(p, src), err)
		}
		return nil
	})
}

func TestEditVerbs(t *testing.T) {
	need(t, "fsck.fat", "mdir")
	img := filepath.Join(t.TempDir(), "edit.img")
	mustRun(t, "mkfs", "--type", "fat16", "--size", "32M", "--sector-size", "2048", img)
	host := filepath.Join(t.TempDir(), "a.txt")
	os.WriteFile(host, []byte("hello\n"), 0o644)

	mustRun(t, "mkdir", "-p", img, "/one/two/three")
	mustRun(t, "put", img, host, "/one/two/three")                        // into a directory by name
	mustRun(t, "put", img, host, "/one/renamed.txt")                      // as a new name
	mustRun(t, "mv", img, "/one/renamed.txt", "/one/two")                 // into a directory
	mustRun(t, "mv", img, "/one/two/renamed.txt", "/one/two/RENAMED.TXT") // case only
	mustRun(t, "mv", img, "/one/two/three", "/moved")                     // a directory across the tree
	mustRun(t, "label", img, "EDITED")
	if got := strings.TrimSpace(mustRun(t, "label", img)); got != "EDITED" {
		t.Fatalf("label: %q", got)
	}
	fsckClean(t, img, 0, 0)
	got := lsJSON(t, img)
	for _, p := range []string{"/one", "/one/two", "/one/two/RENAMED.TXT", "/moved", "/moved/a.txt"} {
		if _, ok := got[p]; !ok {
			t.Errorf("%s missing after the edits; listing: %v", p, keys(got))
		}
	}
	if _, ok := got["/one/two/three"]; ok {
		t.Error("/one/two/three still there after the move")
	}
	// a.txt needs no long name: mdir shows the short entry, lower case.
	if out := mtools(t, img, "mdir", "::/moved"); !strings.Contains(strings.ToLower(out), "a        txt") {
		t.Errorf("mdir does not see the moved directory:\n%s", out)
	}

	if _, stderr, code := mediafsRun(t, "rm", img, "/one"); code != exitFailed || !strings.Contains(stderr, "directory") {
		t.Errorf("rm of a directory without -r: exit %d %q", code, stderr)
	}
	mustRun(t, "rm", img, "/moved/a.txt")
	mustRun(t, "rm", "-r", img, "/one")
	fsckClean(t, img, 0, 0)
	got = lsJSON(t, img)
	if len(got) != 1 {
		t.Errorf("after rm: %v, want only /moved", keys(got))
	}
	for _, bad := range []string{"/CON", "/a*b", "/nul.txt", "/x\x01y"} {
		if _, _, code := mediafsRun(t, "mkdir", img, bad); code != exitFailed {
			t.Errorf("mkdir %s: exit %d, want a refusal", bad, code)
		}
	}
	fsckClean(t, img, 0, 0)
}

func keys(m map[string]lsEntry) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestWriteVerbsRefuseISO(t *testing.T) {
	src := makeSourceTree(t)
	img := makeISO(t, src, "-R")
	before, _ := os.ReadFile(img)
	for _, args := range [][]string{{"mkdir", img, "/x"}, {"rm", img, "/README.TXT"}, {"mv", img, "/README.TXT", "/B"}, {"label", img, "X"}, {"put", img, filepath.Join(src, "README.TXT"), "/"}} {
		_, stderr, code := mediafsRun(t, args...)
		if code != exitFailed || !strings.Contains(stderr, "read-only") {
			t.Errorf("mediafs %v on ISO: exit %d %q", args, code, stderr)
		}
	}
	if after, _ := os.ReadFile(img); !bytes.Equal(before, after) {
		t.Fatal("the ISO image changed")
	}
}

func TestPartitionedImage(t *testing.T) {
	need(t, "fsck.fat")
	for _, table := range []string{"mbr", "gpt"} {
		img := filepath.Join(t.TempDir(), "disk.img")
		mustRun(t, "mkfs", "--type", "fat32", "--size", "300M", "--partition-table", table, "--label", "BOOT", img)
		host := filepath.Join(t.TempDir(), "config.txt")
		os.WriteFile(host, []byte("arm_64bit=1\n"), 0o644)
		mustRun(t, "put", "--partition", "1", img, host, "/")
		mustRun(t, "mkdir", "--partition", "1", img, "/overlays")
		var in struct {
			FS         string
			Label      string
			Partitions []struct{ Start, Size int64 }
		}
		json.Unmarshal([]byte(mustRun(t, "info", "--json", img)), &in)
		if in.FS != "fat32" || in.Label != "BOOT" || len(in.Partitions) != 1 {
			t.Fatalf("%s: info %+v", table, in)
		}
		if out := mustRun(t, "cat", img, "/config.txt"); out != "arm_64bit=1\n" {
			t.Fatalf("%s: cat: %q", table, out)
		}
		fsckClean(t, img, in.Partitions[0].Start, in.Partitions[0].Size)
	}
}

// The README's two commands for an EFI system partition image.
func TestESPRecipe(t *testing.T) {
	need(t, "fsck.fat")
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "EFI/BOOT"), 0o755)
	loader := bytes.Repeat([]byte("MZ-loader"), 5000)
	os.WriteFile(filepath.Join(dir, "EFI/BOOT/BOOTX64.EFI"), loader, 0o644)
	img := filepath.Join(dir, "esp.img")
	mustRun(t, "mkfs", "--type", "fat32", "--size", "260M", "--label", "EFI", "--partition-table", "gpt", "--esp", img)
	mustRun(t, "put", "-r", "--partition", "1", img, filepath.Join(dir, "EFI"), "/")
	if out := mustRun(t, "cat", img, "/EFI/BOOT/BOOTX64.EFI"); out != string(loader) {
		t.Fatalf("loader: %d bytes", len(out))
	}
	// Firmware looks the path up without regard to case.
	if out := mustRun(t, "cat", img, "/efi/boot/bootx64.efi"); out != string(loader) {
		t.Fatal("case-insensitive lookup failed")
	}
	var in struct {
		Partitions []struct {
			Start, Size int64
			Type        string
		}
	}
	json.Unmarshal([]byte(mustRun(t, "info", "--json", img)), &in)
	if len(in.Partitions) != 1 || !strings.EqualFold(in.Partitions[0].Type, "C12A7328-F81F-11D2-BA4B-00A0C93EC93B") {
		t.Fatalf("partitions: %+v, want one EFI system partition", in)
	}
	fsckClean(t, img, in.Partitions[0].Start, in.Partitions[0].Size)
}
