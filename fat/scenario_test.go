package fat

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mediafs/mediafs/device"
)

func TestScenarios(t *testing.T) {
	needTools(t, "fsck.fat", "mtype", "mdir")
	for _, c := range []struct {
		typ  string
		size int64
		ss   int
	}{{"fat12", 4 << 20, 512}, {"fat16", 128 << 20, 2048}, {"fat32", 80 << 20, 512}} {
		t.Run(c.typ, func(t *testing.T) {
			img, d := newImage(t, c.size, c.ss, FormatOptions{Type: c.typ})
			v := mountRW(t, d)
			writeAll(t, v, "README.TXT", []byte("readme"))
			// Case-only rename.
			if err := v.Rename("README.TXT", "readme.txt"); err != nil {
				t.Fatal(err)
			}
			if ents, _ := v.ReadDir("."); len(ents) != 1 || ents[0].Name() != "readme.txt" {
				t.Fatalf("after case rename: %v", ents)
			}
			// Case-insensitive create and O_EXCL.
			if _, err := v.OpenFile("BOOTX64.EFI", os.O_CREATE|os.O_WRONLY, 0o644); err != nil {
				t.Fatal(err)
			}
			if f, err := v.OpenFile("bootx64.efi", os.O_CREATE|os.O_WRONLY, 0o644); err != nil {
				t.Fatal(err)
			} else {
				f.Close()
			}
			if _, err := v.OpenFile("bootx64.efi", os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644); !errors.Is(err, fs.ErrExist) {
				t.Fatalf("O_EXCL: %v", err)
			}
			// Invalid names.
			for _, bad := range []string{"a:b", "con", "NUL.txt", "lpt1.x", "x.", "x ", strings.Repeat("n", 256)} {
				_, err := v.OpenFile(bad, os.O_CREATE|os.O_WRONLY, 0o644)
				if !errors.Is(err, ErrInvalidName) && !errors.Is(err, ErrNameTooLong) {
					t.Errorf("%q: %v", bad, err)
				}
			}
			// Move a directory across directories.
			for _, dn := range []string{"a", "b", "a/inner", "a/inner/deep"} {
				if err := v.Mkdir(dn, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			writeAll(t, v, "a/inner/deep/file.bin", randBytes(7, 5000))
			if err := v.Rename("a/inner", "b/moved"); err != nil {
				t.Fatal(err)
			}
			if got := readAllFS(t, v, "b/moved/deep/file.bin"); !bytes.Equal(got, randBytes(7, 5000)) {
				t.Fatal("moved file differs")
			}
			if err := v.Rename("b", "b/moved/x"); err == nil {
				t.Fatal("moved a directory into itself")
			}
			// Rename replacing a file.
			writeAll(t, v, "old.txt", []byte("old"))
			writeAll(t, v, "new.txt", []byte("new one"))
			if err := v.Rename("new.txt", "old.txt"); err != nil {
				t.Fatal(err)
			}
			if got := readAllFS(t, v, "old.txt"); string(got) != "new one" {
				t.Fatalf("replaced: %q", got)
			}
			if err := v.Rename("old.txt", "a"); err == nil {
				t.Fatal("renamed a file over a directory")
			}
			// Remove: non-empty dir, then the tree.
			if err := v.Remove("b"); !errors.Is(err, ErrNotEmpty) {
				t.Fatalf("remove non-empty: %v", err)
			}
			if err := v.RemoveAll("b"); err != nil {
				t.Fatal(err)
			}
			// Append and truncate.
			f, err := v.OpenFile("log.txt", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			var want []byte
			for i := range 50 {
				p := randBytes(uint64(i), 300+i)
				want = append(want, p...)
				if _, err := f.Write(p); err != nil {
					t.Fatal(err)
				}
			}
			if err := f.Truncate(7000); err != nil {
				t.Fatal(err)
			}
			want = want[:7000]
			if err := f.Truncate(9000); err != nil {
				t.Fatal(err)
			}
			want = append(want, make([]byte, 2000)...)
			f.Close()
			if got := readAllFS(t, v, "log.txt"); !bytes.Equal(got, want) {
				t.Fatal("append/truncate content differs")
			}
			mt := time.Date(2020, 5, 6, 7, 8, 10, 0, time.UTC)
			if err := v.Chtimes("log.txt", mt, mt); err != nil {
				t.Fatal(err)
			}
			if fi, _ := v.Stat("log.txt"); !fi.ModTime().Equal(mt) {
				t.Errorf("mtime %v", fi.ModTime())
			}
			// Full volume: ErrNoSpace, nothing leaked.
			free := v.Info().Free
			_, err = v.OpenFile("huge", os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			hf, _ := v.OpenFile("huge", os.O_WRONLY, 0o644)
			if _, err := hf.WriteAt([]byte("x"), free+10); !errors.Is(err, ErrNoSpace) {
				t.Fatalf("full volume: %v", err)
			}
			hf.Close()
			if got := v.Info().Free; got != free {
				t.Fatalf("free %d, was %d", got, free)
			}
			if err := v.Close(); err != nil {
				t.Fatal(err)
			}
			checkBalanced(t, v)
			fsckClean(t, img)
			if out, err := toolOutput("mtype", "-i", img, "::/log.txt"); err != nil || !bytes.Equal(out, want) {
				t.Fatalf("mtype log.txt: %v", err)
			}
			if out, _ := toolOutput("mdir", "-/", "-a", "-i", img, "::/"); !strings.Contains(string(out), "file.bin") && !strings.Contains(string(out), "FILE") {
				t.Logf("mdir:\n%s", out)
			}
		})
	}
}

func TestRootFull(t *testing.T) {
	mem := device.NewMemory(make([]byte, 1440<<10), 512)
	if err := Format(mem, FormatOptions{}); err != nil {
		t.Fatal(err)
	}
	v := mustOpen(t, mem, Options{Writable: true})
	var err error
	for i := 0; i < 300 && err == nil; i++ {
		var f *File
		if f, err = v.OpenFile("F"+itoa(i), os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			f.Close()
		}
	}
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("root full: %v", err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	checkBalanced(t, v)
}

func TestShortNames(t *testing.T) {
	mem := device.NewMemory(make([]byte, 4<<20), 512)
	if err := Format(mem, FormatOptions{}); err != nil {
		t.Fatal(err)
	}
	v := mustOpen(t, mem, Options{Writable: true})
	seen := map[string]bool{}
	for i := range 8 {
		name := "Long File Name " + itoa(i) + ".document"
		writeAll(t, v, name, nil)
		fi, err := v.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		s := fi.Sys().(*Sys).ShortName
		if seen[s] {
			t.Fatalf("duplicate short name %s", s)
		}
		seen[s] = true
		if i < 4 && s != "LONGFI~"+itoa(i+1)+".DOC" {
			t.Errorf("short name %d: %s", i, s)
		}
		if i >= 4 && (!strings.HasPrefix(s, "LO") || !strings.HasSuffix(s, "~1.DOC")) {
			t.Errorf("hashed short name %d: %s", i, s)
		}
	}
	for name, want := range map[string]uint8{"readme.txt": ntLowerBase | ntLowerExt, "README.txt": ntLowerExt, "readme.TXT": ntLowerBase, "README.TXT": 0} {
		p, ok := plainShort(name)
		if !ok || p.ntres != want {
			t.Errorf("%s: %v %x", name, ok, p.ntres)
		}
	}
	if _, ok := plainShort("ReadMe.txt"); ok {
		t.Error("ReadMe.txt needs a long name")
	}
	v.Close()
}
