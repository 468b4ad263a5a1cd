package fuse

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mediafs/mediafs/iso9660/mkiso"
)

// TestLargeFileReadAhead: while a tree is walked (a listing just ended),
// a large file read on from its start is pushed into the kernel's cache
// ahead of its reader, so that reading it asks for few of its bytes; a
// reader that stops within the first read-ahead costs nothing, one that
// stops later at most about twice what it read; and a large file read
// with no walk under way is left to the kernel.
func TestLargeFileReadAhead(t *testing.T) {
	needFUSE(t)
	files := map[string][]byte{
		"walk/big.bin":    payload(1, 8<<20),
		"walk/huge.bin":   payload(2, 24<<20),
		"walk/third.bin":  payload(4, 24<<20),
		"alone/other.bin": payload(3, 4<<20),
	}
	src := writeTree(t, files, false)
	for _, im := range []image{
		{name: "iso", img: buildISO(t, src, mkiso.Options{RockRidge: true})},
		{name: "fat", img: buildFAT(t, "fat16", 96<<20, src)},
	} {
		t.Run(im.name, func(t *testing.T) {
			mnt, srv := mountFS(t, openRO(t, im.img), Options{})
			pre := srv.m.pre

			// Nothing is pushed for a file read on its own.
			if got, err := os.ReadFile(filepath.Join(mnt, "alone/other.bin")); err != nil || !bytes.Equal(got, files["alone/other.bin"]) {
				t.Fatalf("other.bin: %v", err)
			}
			if n := pre.streamed.Load(); n != 0 {
				t.Fatalf("reading a file with no walk under way pushed %d bytes", n)
			}

			// A walk: list, then read big.bin in 128 KiB reads, as cp does.
			if _, err := os.ReadDir(filepath.Join(mnt, "walk")); err != nil {
				t.Fatal(err)
			}
			if time.Since(time.Unix(0, pre.lastList.Load())) > time.Second {
				t.Fatal("the end of the listing was not noted")
			}
			pre.lastList.Store(time.Now().UnixNano()) // however slow the machine
			before := srv.m.reads.Load()
			got := readSlowly(t, filepath.Join(mnt, "walk/big.bin"), -1)
			if !bytes.Equal(got, files["walk/big.bin"]) {
				t.Fatal("big.bin read wrong")
			}
			// Without the push, it takes about 60 READs.
			if n := srv.m.reads.Load() - before; n > 20 {
				t.Errorf("reading big.bin during a walk made %d READ requests", n)
			}
			if pre.streamed.Load() == 0 {
				t.Error("nothing of big.bin was pushed")
			}

			// A reader that stops in the first read-ahead costs nothing;
			// one that stops after 1 MiB about twice that at most.
			for _, c := range []struct {
				name       string
				read, most int64
			}{{"walk/huge.bin", 4 << 10, 0}, {"walk/third.bin", 1 << 20, 4 << 20}} {
				pre.lastList.Store(time.Now().UnixNano()) // (the listing is cached)
				was := pre.streamed.Load()
				readSlowly(t, filepath.Join(mnt, c.name), c.read)
				time.Sleep(200 * time.Millisecond)
				if n := pre.streamed.Load() - was; n > c.most {
					t.Errorf("%s: a reader that stopped after %d bytes had %d pushed, want at most %d", c.name, c.read, n, c.most)
				}
			}
		})
	}
}

// readSlowly reads the first n bytes of a file (all of it for n < 0) in
// 128 KiB reads with a pause between them, as a reader that also writes
// what it reads does.
func readSlowly(t *testing.T, name string, n int64) []byte {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []byte
	buf := make([]byte, 128<<10)
	for n < 0 || int64(len(out)) < n {
		want := buf
		if n >= 0 {
			want = buf[:min(int64(len(buf)), n-int64(len(out)))]
		}
		k, err := f.Read(want)
		out = append(out, want[:k]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Microsecond)
	}
	return out
}

// TestCloseWhileReadAheadHangs: the image sits on a file system that
// stops answering (here another mediafs mount, whose gate the test holds)
// while the large-file read-ahead is reading it. Close must still return
// within its CloseTimeout, as it does for requests that hang.
func TestCloseWhileReadAheadHangs(t *testing.T) {
	needFUSE(t)
	inner := writeTree(t, map[string][]byte{"w/huge.bin": payload(2, 24<<20)}, false)
	innerImg := buildISO(t, inner, mkiso.Options{RockRidge: true})
	outerSrc := filepath.Join(t.TempDir(), "outer")
	if err := os.MkdirAll(outerSrc, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(innerImg, filepath.Join(outerSrc, "inner.iso")); err != nil {
		t.Fatal(err)
	}
	mnt1, srv1 := mountFS(t, openRO(t, buildISO(t, outerSrc, mkiso.Options{RockRidge: true})), Options{})

	fsys2 := openRO(t, filepath.Join(mnt1, "inner.iso"))
	defer fsys2.Close()
	dir2 := filepath.Join(t.TempDir(), "mnt2")
	if err := os.Mkdir(dir2, 0o755); err != nil {
		t.Fatal(err)
	}
	srv2, err := Mount(dir2, fsys2, Options{CloseTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.ReadDir(filepath.Join(dir2, "w")); err != nil {
		t.Fatal(err)
	}
	n := nodeAt(t, srv2, "w/huge.bin")

	srv1.m.gate.Lock() // the image's file system stops answering
	unlocked := false
	unlock := func() {
		if !unlocked {
			unlocked = true
			srv1.m.gate.Unlock()
		}
	}
	defer unlock()
	// As if huge.bin were read from its start during the walk, and on:
	// the worker starts, and hangs reading the image.
	n.stream.candidate.Store(true)
	srv2.m.pre.largeRead(n, 128<<10, 256<<10)
	time.Sleep(200 * time.Millisecond)
	if err := srv2.Unmount(); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	done := make(chan error, 1)
	go func() { done <- srv2.Close() }()
	select {
	case <-done:
	case <-time.After(4 * time.Second):
		unlock()
		<-done
		t.Errorf("Close with a 1 s CloseTimeout took %v while the read-ahead's medium hung", time.Since(t0))
	}
}
