package fuse

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/mediafs/mediafs"
	"github.com/mediafs/mediafs/fat"
	"github.com/mediafs/mediafs/iso9660"
	"github.com/mediafs/mediafs/iso9660/mkiso"
)

// image is a test image of a source tree.
type image struct {
	name  string
	img   string
	src   string
	perms bool // the medium has modes of its own (Rock Ridge)
	opts  []mediafs.Option
}

// testImages builds the read-only fixtures: FAT12/16/32 by mediafs's
// writer (one on 2048-byte sectors), FAT by mkfs.fat + mcopy, ISO 9660 by
// mkiso with 2048-, 1024- and 512-byte logical blocks, and by genisoimage
// and xorriso when they are installed.
func testImages(t *testing.T) []image {
	files := sourceFiles()
	plain := writeTree(t, files, false)
	linked := writeTree(t, files, true)
	imgs := []image{
		{name: "fat12", img: buildFAT(t, "fat12", 4<<20, plain), src: plain},
		{name: "fat16", img: buildFAT(t, "fat16", 24<<20, plain), src: plain},
		{name: "fat32", img: buildFAT(t, "fat32", 40<<20, plain), src: plain},
		{name: "iso-rr-2048", img: buildISO(t, linked, mkiso.Options{RockRidge: true, Joliet: true}), src: linked, perms: true},
		{name: "iso-rr-512", img: buildISO(t, linked, mkiso.Options{BlockSize: 512, RockRidge: true, UnalignedDirs: true}), src: linked, perms: true},
		{name: "iso-joliet-1024", img: buildISO(t, plain, mkiso.Options{BlockSize: 1024, Joliet: true}), src: plain},
	}
	// FAT on 2048-byte sectors (magneto-optical disks).
	imgs = append(imgs, image{name: "fat16-2048", img: buildFATSector(t, plain, 2048), src: plain})
	if _, err := execLook("mkfs.fat", "mcopy"); err == nil {
		img := filepath.Join(t.TempDir(), "mtools.img")
		run(t, "truncate", "-s", "32M", img)
		run(t, "mkfs.fat", "-F", "16", img)
		ents, _ := os.ReadDir(plain)
		args := []string{"-s", "-p", "-m", "-i", img}
		for _, e := range ents {
			args = append(args, filepath.Join(plain, e.Name()))
		}
		run(t, "mcopy", append(args, "::/")...)
		imgs = append(imgs, image{name: "mkfs.fat+mcopy", img: img, src: plain})
	}
	if _, err := execLook("genisoimage"); err == nil {
		img := filepath.Join(t.TempDir(), "genisoimage.iso")
		run(t, "genisoimage", "-quiet", "-R", "-J", "-joliet-long", "-o", img, linked)
		imgs = append(imgs, image{name: "genisoimage", img: img, src: linked, perms: true})
	}
	if _, err := execLook("xorriso"); err == nil {
		img := filepath.Join(t.TempDir(), "xorriso.iso")
		run(t, "xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-o", img, linked)
		imgs = append(imgs, image{name: "xorriso", img: img, src: linked, perms: true})
	}
	return imgs
}

// buildFATSector makes a FAT16 image on sectors of ss bytes.
func buildFATSector(t *testing.T, src string, ss int) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "ss.img")
	if err := mediafs.Mkfs(img, mediafs.MkfsOptions{Type: "fat16", Size: 64 << 20, SectorSize: ss}); err != nil {
		t.Fatal(err)
	}
	w, err := mediafs.OpenWritable(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := copyInto(w, src); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return img
}

// copyInto copies a host tree into a writable volume, with times.
func copyInto(w mediafs.WritableFS, src string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			if err := w.Mkdir(rel, 0o755); err != nil {
				return err
			}
		case d.Type().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			f, err := w.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
			if err != nil {
				return err
			}
			if _, err := f.Write(data); err != nil {
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
		default:
			return nil
		}
		return w.Chtimes(rel, testTime, testTime)
	})
}

func execLook(tools ...string) (string, error) {
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			return tool, err
		}
	}
	return "", nil
}

// TestReadOnlyMounts mounts every fixture read-only and checks the tree
// with diff -r against its source, every file through mmap (bytes, and
// zeros past the end of the last page), the modes and owner shown, and
// that changes fail with EROFS.
func TestReadOnlyMounts(t *testing.T) {
	needFUSE(t)
	for _, im := range testImages(t) {
		t.Run(im.name, func(t *testing.T) {
			fsys := openRO(t, im.img, im.opts...)
			mnt, srv := mountFS(t, fsys, Options{})
			diffTrees(t, im.src, mnt)
			mmapCompare(t, im.src, mnt)
			if srv.m.spliced.Load() == 0 {
				t.Errorf("no read was spliced from the image file")
			}
			if srv.m.pre.pushed.Load() == 0 {
				t.Errorf("no small file was read ahead into the kernel's cache")
			}
			checkModes(t, im, mnt)
			if err := os.WriteFile(filepath.Join(mnt, "new"), nil, 0o644); errnoOf(err) != syscall.EROFS {
				t.Errorf("creating a file: %v, want EROFS", err)
			}
			if err := os.Remove(filepath.Join(mnt, "README.TXT")); errnoOf(err) != syscall.EROFS {
				t.Errorf("removing a file: %v, want EROFS", err)
			}
			if f, err := os.OpenFile(filepath.Join(mnt, "README.TXT"), os.O_WRONLY, 0); errnoOf(err) != syscall.EROFS {
				t.Errorf("opening for writing: %v, want EROFS", err)
				if f != nil {
					f.Close()
				}
			}
		})
	}
}

// checkModes compares what stat says with the source and the medium: the
// mounting user owns everything; Rock Ridge media show the source's modes,
// the others 0555 directories and 0444 files.
func checkModes(t *testing.T, im image, mnt string) {
	t.Helper()
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	filepath.WalkDir(im.src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(im.src, p)
		var src, got syscall.Stat_t
		if err := syscall.Lstat(p, &src); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Lstat(filepath.Join(mnt, rel), &got); err != nil {
			t.Errorf("lstat %s: %v", rel, err)
			return nil
		}
		if got.Uid != uid || got.Gid != gid {
			t.Errorf("%s: owner %d:%d, want %d:%d", rel, got.Uid, got.Gid, uid, gid)
		}
		want := src.Mode
		if !im.perms {
			switch {
			case d.IsDir():
				want = syscall.S_IFDIR | 0o555
			default:
				want = syscall.S_IFREG | 0o444
			}
		}
		if got.Mode != want {
			t.Errorf("%s: mode %o, want %o", rel, got.Mode, want)
		}
		if got.Mode&syscall.S_IFMT == syscall.S_IFREG || got.Mode&syscall.S_IFMT == syscall.S_IFLNK {
			if got.Size != src.Size {
				t.Errorf("%s: size %d, want %d", rel, got.Size, src.Size)
			}
		}
		if got.Mode&syscall.S_IFMT == syscall.S_IFREG && got.Mtim.Sec != testTime.Unix() {
			t.Errorf("%s: mtime %d, want %d", rel, got.Mtim.Sec, testTime.Unix())
		}
		if got.Mode&syscall.S_IFMT == syscall.S_IFREG && got.Blocks*512 < got.Size {
			t.Errorf("%s: %d blocks for %d bytes", rel, got.Blocks, got.Size)
		}
		return nil
	})
}

// TestInodeNumbersAndLinks checks st_ino against what the medium says
// (fat.Sys.Ino: the entry's place; iso9660.Sys.Ino: the PX serial or the
// record's position), d_ino against st_ino, and link counts: Rock Ridge's
// PX, else 2 plus the subdirectories for directories.
func TestInodeNumbersAndLinks(t *testing.T) {
	needFUSE(t)
	src := writeTree(t, sourceFiles(), true)
	plain := writeTree(t, sourceFiles(), false)
	for _, im := range []image{
		{name: "fat16", img: buildFAT(t, "fat16", 24<<20, plain), src: plain},
		{name: "iso-rr", img: buildISO(t, src, mkiso.Options{RockRidge: true}), src: src},
		{name: "iso-plain", img: buildISO(t, plain, mkiso.Options{Joliet: true}), src: plain},
	} {
		t.Run(im.name, func(t *testing.T) {
			fsys := openRO(t, im.img)
			ref := openRO(t, im.img)
			defer ref.Close()
			mnt, _ := mountFS(t, fsys, Options{})
			seen := map[uint64]string{}
			err := fs.WalkDir(ref, ".", func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				fi, err := ref.(mediafs.LinkFS).Lstat(p)
				if err != nil {
					return err
				}
				var st syscall.Stat_t
				if err := syscall.Lstat(filepath.Join(mnt, p), &st); err != nil {
					t.Errorf("lstat %s: %v", p, err)
					return nil
				}
				var wantIno uint64
				var wantLinks uint32 = 1
				switch s := fi.Sys().(type) {
				case *fat.Sys:
					wantIno = s.Ino
				case *iso9660.Sys:
					wantIno = s.Ino
					if s.HasOwner {
						wantLinks = s.Nlink
					}
				}
				if d.IsDir() && (wantLinks <= 1) {
					ents, _ := fs.ReadDir(ref, p)
					wantLinks = 2
					for _, e := range ents {
						if e.IsDir() {
							wantLinks++
						}
					}
				}
				if st.Ino != wantIno {
					t.Errorf("%s: st_ino %d, want %d", p, st.Ino, wantIno)
				}
				if other, dup := seen[st.Ino]; dup {
					t.Errorf("%s and %s both have inode %d", p, other, st.Ino)
				}
				seen[st.Ino] = p
				if uint32(st.Nlink) != wantLinks {
					t.Errorf("%s: %d links, want %d", p, st.Nlink, wantLinks)
				}
				if d.IsDir() {
					checkDirents(t, filepath.Join(mnt, p))
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// checkDirents compares every d_ino of a directory with the st_ino of the
// entry.
func checkDirents(t *testing.T, dir string) {
	t.Helper()
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		t.Errorf("open %s: %v", dir, err)
		return
	}
	defer syscall.Close(fd)
	buf := make([]byte, 8192)
	for {
		n, err := syscall.Getdents(fd, buf)
		if err != nil {
			t.Errorf("getdents %s: %v", dir, err)
			return
		}
		if n == 0 {
			return
		}
		for b := buf[:n]; len(b) > 0; {
			de := (*syscall.Dirent)(unsafe.Pointer(&b[0]))
			name := direntName(de)
			b = b[de.Reclen:]
			if name == "." || name == ".." {
				continue
			}
			var st syscall.Stat_t
			if err := syscall.Lstat(path.Join(dir, name), &st); err != nil {
				t.Errorf("lstat %s/%s: %v", dir, name, err)
				continue
			}
			if st.Ino != de.Ino {
				t.Errorf("%s/%s: d_ino %d, st_ino %d", dir, name, de.Ino, st.Ino)
			}
		}
	}
}

func direntName(de *syscall.Dirent) string {
	var sb strings.Builder
	for _, c := range de.Name {
		if c == 0 {
			break
		}
		sb.WriteByte(byte(c))
	}
	return sb.String()
}

// TestHardLinks mounts an image whose Rock Ridge PX serial numbers make
// two names one file (xorriso --hardlinks): both show one inode, with 2
// links.
func TestHardLinks(t *testing.T) {
	needFUSE(t)
	need(t, "xorriso")
	src := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(filepath.Join(src, "d"), 0o755)
	os.WriteFile(filepath.Join(src, "f1"), []byte("linked\n"), 0o644)
	if err := os.Link(filepath.Join(src, "f1"), filepath.Join(src, "d", "f2")); err != nil {
		t.Skipf("no hard links in the temporary directory: %v", err)
	}
	os.WriteFile(filepath.Join(src, "f3"), []byte("linked\n"), 0o644) // same bytes, another file
	img := filepath.Join(t.TempDir(), "hl.iso")
	run(t, "xorriso", "-as", "mkisofs", "-quiet", "-R", "--hardlinks", "-o", img, src)
	mnt, _ := mountFS(t, openRO(t, img), Options{})
	var a, b, c syscall.Stat_t
	for p, st := range map[string]*syscall.Stat_t{"f1": &a, "d/f2": &b, "f3": &c} {
		if err := syscall.Stat(filepath.Join(mnt, p), st); err != nil {
			t.Fatal(err)
		}
	}
	if a.Ino != b.Ino || a.Nlink != 2 || b.Nlink != 2 {
		t.Errorf("f1 %d (%d links), d/f2 %d (%d links): want one inode with 2 links", a.Ino, a.Nlink, b.Ino, b.Nlink)
	}
	if c.Ino == a.Ino || c.Nlink != 1 {
		t.Errorf("f3 has inode %d with %d links; f1 has %d", c.Ino, c.Nlink, a.Ino)
	}
}

// TestReadAhead reads the first small file of a directory and checks that
// the small files after it were pushed into the kernel's cache: reading
// them makes no READ request, and gives their bytes.
func TestReadAhead(t *testing.T) {
	needFUSE(t)
	files := map[string][]byte{"big/large.bin": payload(99, 300<<10)}
	for i := 0; i < 20; i++ {
		files[fmt.Sprintf("small/f%02d.txt", i)] = payload(i, 100+i*997)
	}
	src := writeTree(t, files, false)
	for _, im := range isoAndFAT(t, src) {
		t.Run(im.name, func(t *testing.T) {
			mnt, srv := mountFS(t, openRO(t, im.img), Options{})
			if _, err := os.ReadDir(filepath.Join(mnt, "small")); err != nil {
				t.Fatal(err)
			}
			if got, err := os.ReadFile(filepath.Join(mnt, "small/f00.txt")); err != nil || !bytes.Equal(got, files["small/f00.txt"]) {
				t.Fatalf("f00: %v", err)
			}
			waitPushed(t, srv.m.pre, 19)
			var names []string
			for i := 1; i < 20; i++ {
				names = append(names, fmt.Sprintf("small/f%02d.txt", i))
			}
			readCached(t, srv, mnt, files, names)
			// Nothing is read ahead for a directory nobody reads from.
			os.ReadDir(filepath.Join(mnt, "big"))
			if n := srv.m.pre.pushed.Load(); n != 19 {
				t.Errorf("listing a directory read %d files ahead", n-19)
			}
		})
	}
}

// TestReadAheadListing checks the two ways a window starts before its
// files are asked for: the first files after the one read are pushed
// before that read is answered, and while a tree is being read, listing a
// directory pushes its first files before the listing ends, so that not
// even its first file waits for a READ. Listing a directory with no file
// read lately pushes nothing.
func TestReadAheadListing(t *testing.T) {
	needFUSE(t)
	files := map[string][]byte{}
	for _, d := range []string{"a", "b", "c"} {
		for i := 0; i < 5; i++ {
			files[fmt.Sprintf("%s/f%d.txt", d, i)] = payload(len(files), 200+i*811)
		}
	}
	src := writeTree(t, files, false)
	for _, im := range isoAndFAT(t, src) {
		t.Run(im.name, func(t *testing.T) {
			mnt, srv := mountFS(t, openRO(t, im.img), Options{})
			pre := srv.m.pre
			for _, d := range []string{"c", "a"} {
				if _, err := os.ReadDir(filepath.Join(mnt, d)); err != nil {
					t.Fatal(err)
				}
			}
			if n := pre.pushed.Load(); n != 0 {
				t.Fatalf("listing with no file read lately pushed %d files", n)
			}
			if _, err := os.ReadFile(filepath.Join(mnt, "a/f0.txt")); err != nil {
				t.Fatal(err)
			}
			// The head of the window is in before the read's answer.
			if n := pre.pushed.Load(); n < headPushes {
				t.Fatalf("%d files pushed when the first read returned, want at least %d", n, headPushes)
			}
			waitPushed(t, pre, 4)
			if _, err := os.ReadDir(filepath.Join(mnt, "b")); err != nil {
				t.Fatal(err)
			}
			if n := pre.pushed.Load(); n < 4+headPushes {
				t.Fatalf("%d files pushed when the listing of b ended, want at least %d", n, 4+headPushes)
			}
			waitPushed(t, pre, 9)
			var names []string
			for i := 0; i < 5; i++ {
				names = append(names, fmt.Sprintf("b/f%d.txt", i))
			}
			readCached(t, srv, mnt, files, names)
		})
	}
}

// headPushes is how many files a window pushes before answering (the
// test's own copy of prefetchHead, so that it also runs against a
// prefetcher without a head).
const headPushes = 2

// waitPushed waits until the read-ahead has pushed want files in all.
func waitPushed(t *testing.T, pre *prefetcher, want int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for pre.pushed.Load() < want && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := pre.pushed.Load(); n != want {
		t.Fatalf("%d files read ahead, want %d", n, want)
	}
}

// readCached reads files the read-ahead pushed: they must read right, and
// without a single READ request.
func readCached(t *testing.T, srv *Server, mnt string, files map[string][]byte, names []string) {
	t.Helper()
	before := srv.m.reads.Load()
	for _, name := range names {
		if got, err := os.ReadFile(filepath.Join(mnt, name)); err != nil || !bytes.Equal(got, files[name]) {
			t.Errorf("%s: %d bytes, %v", name, len(got), err)
		}
	}
	if n := srv.m.reads.Load() - before; n != 0 {
		t.Errorf("reading the files read ahead made %d READ requests", n)
	}
}

// isoAndFAT masters src as a Rock Ridge ISO and as a FAT16 image.
func isoAndFAT(t *testing.T, src string) []image {
	return []image{
		{name: "iso", img: buildISO(t, src, mkiso.Options{RockRidge: true})},
		{name: "fat", img: buildFAT(t, "fat16", 24<<20, src)},
	}
}

// countLinks counts the symbolic-link targets a mount reads.
type countLinks struct {
	mediafs.FS
	links mediafs.LinkFS
	reads atomic.Int64
}

func (c *countLinks) Lstat(name string) (fs.FileInfo, error) { return c.links.Lstat(name) }

func (c *countLinks) ReadLink(name string) (string, error) {
	c.reads.Add(1)
	return c.links.ReadLink(name)
}

// TestListingReadsLinkOnce lists a directory with symbolic links: the
// listing (READDIRPLUS: an entry and its lookup) reads each target once,
// and the targets are right.
func TestListingReadsLinkOnce(t *testing.T) {
	needFUSE(t)
	src := writeTree(t, map[string][]byte{"README.TXT": []byte("hello\n"), "docs/a.txt": []byte("a\n")}, true)
	fsys := openRO(t, buildISO(t, src, mkiso.Options{RockRidge: true}))
	c := &countLinks{FS: fsys, links: fsys.(mediafs.LinkFS)}
	mnt, _ := mountFS(t, c, Options{})
	ents, err := os.ReadDir(filepath.Join(mnt, "docs"))
	if err != nil {
		t.Fatal(err)
	}
	listed := c.reads.Load()
	links := 0
	for _, e := range ents {
		if e.Type()&fs.ModeSymlink == 0 {
			continue
		}
		links++
		want, _ := os.Readlink(filepath.Join(src, "docs", e.Name()))
		if got, err := os.Readlink(filepath.Join(mnt, "docs", e.Name())); err != nil || got != want {
			t.Errorf("%s: target %q, %v; want %q", e.Name(), got, err, want)
		}
	}
	if links != 2 {
		t.Fatalf("%d symbolic links listed, want 2", links)
	}
	if listed != int64(links) {
		t.Errorf("listing %d symbolic links read their targets %d times", links, listed)
	}
}
