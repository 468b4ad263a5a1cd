package fuse

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// TestListingsWithoutOpendir walks read-only mounts: the kernel asks
// OPENDIR once (ENOSYS tells it to stop), every listing is whole, several
// readers listing the same directories at once each get all of it, and
// every handle opened for a listing is closed once its listing ended. A
// listing given up half way keeps its handle until a later reader lists
// the directory to the end, and that reader gets every entry.
func TestListingsWithoutOpendir(t *testing.T) {
	needFUSE(t)
	files := map[string][]byte{}
	var big []string
	for i := range 400 {
		name := fmt.Sprintf("entry with a rather long name number %03d.txt", i)
		big = append(big, name)
		files["big/"+name] = []byte{byte(i)}
	}
	for i := range 12 {
		files[fmt.Sprintf("d%02d/sub/f.txt", i)] = []byte("x")
		files[fmt.Sprintf("d%02d/g.txt", i)] = []byte("y")
	}
	src := writeTree(t, files, false)
	for _, im := range isoAndFAT(t, src) {
		t.Run(im.name, func(t *testing.T) {
			mnt, srv := mountFS(t, openRO(t, im.img), Options{})
			lists := srv.m.lists

			// Half a listing: one getdents of a directory that takes
			// several READDIRPLUS answers.
			f, err := os.Open(filepath.Join(mnt, "big"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.ReadDir(5); err != nil {
				t.Fatal(err)
			}
			f.Close()
			if n := lists.handles(); n != 1 {
				t.Fatalf("%d listings open after one was given up, want 1", n)
			}

			var wg sync.WaitGroup
			got := make([][]string, 8)
			for r := range got {
				wg.Add(1)
				go func() {
					defer wg.Done()
					fs.WalkDir(os.DirFS(mnt), ".", func(p string, d fs.DirEntry, err error) error {
						if err != nil {
							t.Errorf("reader %d: %s: %v", r, p, err)
							return nil
						}
						got[r] = append(got[r], p)
						return nil
					})
				}()
			}
			wg.Wait()
			var want []string
			fs.WalkDir(os.DirFS(src), ".", func(p string, d fs.DirEntry, err error) error {
				want = append(want, p)
				return nil
			})
			for r := range got {
				if !slices.Equal(got[r], want) {
					t.Errorf("reader %d walked %d paths, want %d", r, len(got[r]), len(want))
				}
			}
			ents, err := os.ReadDir(filepath.Join(mnt, "big"))
			if err != nil || len(ents) != len(big) {
				t.Fatalf("big: %d entries, %v; want %d", len(ents), err, len(big))
			}
			if n := lists.handles(); n != 0 {
				t.Errorf("%d listings still open after every listing ended", n)
			}
			if n := lists.asked.Load(); n > 1 {
				t.Errorf("the kernel sent OPENDIR %d times, want at most once", n)
			}
		})
	}
}
