package fuse

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/mediafs/mediafs"
)

// TestListingsWithoutOpendir walks read-only mounts: the kernel asks
// OPENDIR once (ENOSYS tells it to stop), and every listing is whole:
// several readers listing the same directories at once, one that gave a
// listing up half way, and two whose getdents buffers differ (the kernel
// sizes READDIRPLUS by them), so that their offsets interleave.
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
			dir := filepath.Join(mnt, "big")

			// A listing given up after one small getdents.
			f, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
			if err != nil {
				t.Fatal(err)
			}
			getdentsNames(t, f, 4096)
			unix.Close(f)

			// Two readers at once, one with small buffers, one with a
			// large one that runs ahead of it.
			a, _ := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
			b, _ := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
			seen := map[string]bool{}
			for _, nm := range getdentsNames(t, b, 4096) {
				seen[nm] = true
			}
			getdentsNames(t, a, 64<<10)
			for {
				names := getdentsNames(t, b, 4096)
				if len(names) == 0 {
					break
				}
				for _, nm := range names {
					seen[nm] = true
				}
			}
			unix.Close(a)
			unix.Close(b)
			if len(seen) != len(big) {
				t.Errorf("a reader beside another listed %d names, want %d", len(seen), len(big))
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
			if n := srv.m.lists.asked.Load(); n > 1 {
				t.Errorf("the kernel sent OPENDIR %d times, want at most once", n)
			}
		})
	}
}

// TestDamagedListingTwoReaders lists a directory whose last entries
// cannot be read, with two readers at once: both get the entries that can
// be read and then EIO, and so does a later listing (the kernel must not
// keep the listing as complete).
func TestDamagedListingTwoReaders(t *testing.T) {
	needFUSE(t)
	files := map[string][]byte{}
	for i := range 8 {
		files[fmt.Sprintf("bad/f%d.txt", i)] = []byte("x")
	}
	src := writeTree(t, files, false)
	for _, im := range isoAndFAT(t, src) {
		t.Run(im.name, func(t *testing.T) {
			bd := &brokenDir{FS: openRO(t, im.img), dir: "bad", keep: 5}
			mnt, _ := mountFS(t, bd, Options{})
			dir := filepath.Join(mnt, "bad")
			a, _ := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
			defer unix.Close(a)
			c, _ := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
			defer unix.Close(c)
			buf := make([]byte, 4096)
			unix.Getdents(a, buf)
			unix.Getdents(c, buf)
			_, ea := unix.Getdents(a, buf)
			_, ec := unix.Getdents(c, buf)
			if ea != syscall.EIO || ec != syscall.EIO {
				t.Errorf("the ends of two listings of a damaged directory: %v and %v, want EIO", ea, ec)
			}
			ents, err := os.ReadDir(dir)
			if !errorsIsEIO(err) || len(ents) != 5 {
				t.Errorf("a later listing: %d entries, %v; want 5 and EIO", len(ents), err)
			}
			// Each of the three listings read the directory once: its
			// first request reads it afresh, the next one goes on with it.
			if n := bd.opens.Load(); n != 3 {
				t.Errorf("three listings of the damaged directory read it %d times, want 3", n)
			}
		})
	}
}

func errorsIsEIO(err error) bool { return errnoOf(err) == syscall.EIO }

// getdentsNames makes one getdents64 call with a size-byte buffer.
func getdentsNames(t *testing.T, fd int, size int) []string {
	t.Helper()
	buf := make([]byte, size)
	n, err := unix.Getdents(fd, buf)
	if err != nil {
		t.Fatalf("getdents: %v", err)
	}
	_, _, names := syscall.ParseDirent(buf[:n], -1, nil)
	return names
}

// brokenDir makes the listing of one directory end with EIO after its
// first keep entries, as a damaged directory does.
type brokenDir struct {
	mediafs.FS
	dir   string
	keep  int
	opens atomic.Int64 // of dir
}

type brokenDirFile struct {
	fs.ReadDirFile
	keep int
}

func (f brokenDirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	ents, err := f.ReadDirFile.ReadDir(-1)
	if err != nil {
		return ents, err
	}
	return ents[:min(f.keep, len(ents))], syscall.EIO
}

func (b *brokenDir) Open(name string) (fs.File, error) {
	f, err := b.FS.Open(name)
	if err != nil || name != b.dir {
		return f, err
	}
	b.opens.Add(1)
	return brokenDirFile{ReadDirFile: f.(fs.ReadDirFile), keep: b.keep}, nil
}

// TestListingReadAgainDifferently: a reader is part way through the
// listing of a damaged directory (a sector in the middle unreadable)
// when another reader starts a listing, which reads the directory again,
// and the sector now reads. The first reader's offsets count in the old
// listing: going on in the new one would repeat some names and miss
// others, with no error, and the kernel would keep that as the listing.
// It gets EIO instead, and a later listing gets every name.
func TestListingReadAgainDifferently(t *testing.T) {
	needFUSE(t)
	const total = 300
	files := map[string][]byte{}
	for i := range total {
		files[fmt.Sprintf("d/entry with a rather long name number %03d.txt", i)] = []byte("x")
	}
	src := writeTree(t, files, false)
	for _, im := range isoAndFAT(t, src) {
		t.Run(im.name, func(t *testing.T) {
			fd := &healingDir{FS: openRO(t, im.img), dir: "d", from: 5, to: 100}
			mnt, _ := mountFS(t, fd, Options{})
			dir := filepath.Join(mnt, "d")
			a, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(a)
			first := getdentsNames(t, a, 4096)
			b, _ := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
			getdentsNames(t, b, 4096)
			unix.Close(b)
			rest, err := allNames(a)
			names := append(first, rest...)
			if err == nil && (len(names) != total || len(distinct(names)) != total) {
				t.Errorf("the first reader got %d names, %d distinct, and no error; want %d or EIO",
					len(names), len(distinct(names)), total)
			}
			c, _ := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
			defer unix.Close(c)
			later, err := allNames(c)
			if err != nil || len(later) != total || len(distinct(later)) != total {
				t.Errorf("a later listing: %d names, %d distinct, %v; want %d", len(later), len(distinct(later)), err, total)
			}
		})
	}
}

// healingDir: the first listing of dir misses entries [from, to) (a bad
// sector in the middle, which both drivers read past) and ends with EIO;
// later listings read the sector.
type healingDir struct {
	mediafs.FS
	dir      string
	from, to int
	opens    atomic.Int64
}

type healingDirFile struct {
	fs.ReadDirFile
	from, to int
	first    bool
}

func (f healingDirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	ents, err := f.ReadDirFile.ReadDir(-1)
	if err != nil || !f.first {
		return ents, err
	}
	return append(ents[:f.from:f.from], ents[f.to:]...), syscall.EIO
}

func (h *healingDir) Open(name string) (fs.File, error) {
	f, err := h.FS.Open(name)
	if err != nil || name != h.dir {
		return f, err
	}
	return healingDirFile{ReadDirFile: f.(fs.ReadDirFile), from: h.from, to: h.to, first: h.opens.Add(1) == 1}, nil
}

// allNames reads a directory descriptor to its end.
func allNames(fd int) ([]string, error) {
	var all []string
	buf := make([]byte, 4096)
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil || n == 0 {
			return all, err
		}
		_, _, names := syscall.ParseDirent(buf[:n], -1, nil)
		all = append(all, names...)
	}
}

func distinct(names []string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}
