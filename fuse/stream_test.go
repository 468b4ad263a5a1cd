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
// the first read of a large file starts pushing the file into the
// kernel's cache, so that reading the rest asks for few of its bytes; a
// reader that stops early costs at most streamAhead bytes pushed; and a
// large file read with no walk under way is left to the kernel.
func TestLargeFileReadAhead(t *testing.T) {
	needFUSE(t)
	files := map[string][]byte{
		"walk/big.bin":    payload(1, 8<<20),
		"walk/huge.bin":   payload(2, 24<<20),
		"alone/other.bin": payload(3, 4<<20),
	}
	src := writeTree(t, files, false)
	for _, im := range []image{
		{name: "iso", img: buildISO(t, src, mkiso.Options{RockRidge: true})},
		{name: "fat", img: buildFAT(t, "fat16", 64<<20, src)},
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
			f, err := os.Open(filepath.Join(mnt, "walk/big.bin"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			head := make([]byte, 128<<10)
			if _, err := io.ReadFull(f, head); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for pre.streamed.Load() < 6<<20 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			before := srv.m.reads.Load()
			rest, err := io.ReadAll(f)
			if err != nil || !bytes.Equal(append(head, rest...), files["walk/big.bin"]) {
				t.Fatalf("big.bin read wrong: %v", err)
			}
			// Without the push, the rest takes about 30 READs of 256 KiB.
			if n := srv.m.reads.Load() - before; n > 10 {
				t.Errorf("reading the rest of big.bin after it was pushed made %d READ requests", n)
			}

			// A reader that stops: at most streamAhead past its last READ.
			if _, err := os.ReadDir(filepath.Join(mnt, "walk")); err != nil {
				t.Fatal(err)
			}
			pre.lastList.Store(time.Now().UnixNano())
			was := pre.streamed.Load()
			g, err := os.Open(filepath.Join(mnt, "walk/huge.bin"))
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			if _, err := io.ReadFull(g, head); err != nil {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond)
			if n := pre.streamed.Load() - was; n == 0 || n > streamAhead+streamChunk {
				t.Errorf("a reader that stopped after 128 KiB had %d bytes pushed, want 1 to %d", n, streamAhead+streamChunk)
			}
		})
	}
}
