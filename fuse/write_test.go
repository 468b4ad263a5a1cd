package fuse

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/posixtest"

	"github.com/mediafs/mediafs"
	"github.com/mediafs/mediafs/fat"
)

// newFAT makes an empty FAT image file.
func newFAT(t *testing.T, typ string, size int64) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "rw.img")
	if err := mediafs.Mkfs(img, mediafs.MkfsOptions{Type: typ, Size: size}); err != nil {
		t.Fatal(err)
	}
	return img
}

// mountRW mounts a FAT image read-write.
func mountRW(t *testing.T, img string) (string, *Server) {
	t.Helper()
	w, err := mediafs.OpenWritable(img)
	if err != nil {
		t.Fatal(err)
	}
	return mountFS(t, w, Options{Writable: true})
}

// fsckClean runs fsck.fat -n -v on the image and fails the test unless
// it finds nothing at all (the dirty bit and a wrong FSInfo free count
// included).
func fsckClean(t *testing.T, img string) {
	t.Helper()
	need(t, "fsck.fat")
	out := run(t, "fsck.fat", "-n", "-v", img)
	for _, bad := range []string{"Dirty bit", "differ", "Free cluster summary wrong", "lost", "Reclaim", "Orphan", "Bad", "invalid", "Invalid"} {
		if strings.Contains(out, bad) {
			t.Errorf("fsck.fat -n %s reports %q:\n%s", img, bad, out)
			return
		}
	}
}

// posixApplies lists go-fuse's posixtest subtests that hold for FAT, and
// posixSkips says why the others do not.
var posixApplies = []string{
	"AppendWrite", "DirSeek", "DirectIO", "Fallocate", "FcntlFlockSetLk", "FdLeak", "FileLarge", "FstatDeleted", "LseekEnxioCheck",
	"LseekHoleSeeksToEOF", "MkdirRmdir", "NlinkZero", "OpenAt", "ParallelFileOpen",
	"ReadDirBasic", "ReadDirConsistency", "RenameOpenDir", "RenameOverwriteDestExist",
	"RenameOverwriteDestNoExist", "TruncateFile", "TruncateNoFile", "Tmpfile",
}

var posixSkips = map[string]string{
	"FcntlFlockLocksFile": "expects a second F_SETLK of the same process to conflict; the kernel keeps the locks of a FUSE mount without lock support, and POSIX locks of one process never conflict",
	"FileBasic":           "checks that a file written with mode 0755 shows 0755; FAT keeps no modes (files show 0644)",
	"Link":                "FAT has no hard links (EPERM, as vfat)",
	"LinkUnlinkRename":    "FAT has no hard links",
	"SymlinkReadlink":     "FAT has no symbolic links",
	"SetattrSymlink":      "FAT has no symbolic links",
	"OpenSymlinkRace":     "FAT has no symbolic links",
	"XAttr":               "FAT has no extended attributes",
	"XAttrLarge":          "FAT has no extended attributes",
	"FallocateKeepSize":   "FAT cannot allocate clusters past the end of a file",
}

// TestPosix runs go-fuse's POSIX conformance subtests that apply to FAT on
// a fresh read-write FAT32 mount each (FAT32, whose root directory grows:
// ReadDirBasic makes 110 long names, more than a FAT16 root holds),
// checking the image with fsck.fat after each.
func TestPosix(t *testing.T) {
	needFUSE(t)
	for name := range posixtest.All {
		if _, skip := posixSkips[name]; !skip && !contains(posixApplies, name) {
			t.Errorf("posixtest.%s is new: decide whether it applies to FAT", name)
		}
	}
	for _, name := range posixApplies {
		fn := posixtest.All[name]
		if fn == nil {
			t.Errorf("posixtest.%s is gone", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			img := newFAT(t, "fat32", 40<<20)
			mnt, srv := mountRW(t, img)
			fn(t, mnt)
			unmountAndClose(t, srv)
			fsckClean(t, img)
		})
	}
	for name, why := range posixSkips {
		t.Run(name, func(t *testing.T) { t.Skip(why) })
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestShellTools changes a read-write mount with cp, mv, rm, mkdir and
// touch, then checks the image with fsck.fat -n (clean), reads it back
// with mtools (mdir) and mediafs, and compares with the same steps done on
// a host directory.
func TestShellTools(t *testing.T) {
	needFUSE(t)
	need(t, "cp", "mv", "rm", "mkdir", "touch", "mdir", "fsck.fat")
	src := writeTree(t, sourceFiles(), false)
	img := newFAT(t, "fat32", 64<<20)
	mnt, srv := mountRW(t, img)
	ref := filepath.Join(t.TempDir(), "ref")
	os.Mkdir(ref, 0o755)
	for _, root := range []string{ref, mnt} {
		run(t, "cp", "-r", "--preserve=timestamps", src+"/.", root)
		run(t, "mkdir", "-p", root+"/new dir/sub")
		run(t, "touch", root+"/new dir/sub/empty file")
		run(t, "mv", root+"/README.TXT", root+"/new dir/Read Me.txt")
		run(t, "mv", root+"/docs", root+"/new dir/sub/documents")
		run(t, "rm", root+"/data/f0004096.bin")
		run(t, "rm", "-r", root+"/deep/a/b")
		run(t, "cp", root+"/data/f1048699.bin", root+"/data/copy.bin")
		run(t, "touch", "-d", "2019-05-06 07:08:10", root+"/data/copy.bin")
	}
	diffTrees(t, ref, mnt)
	var st syscall.Stat_t
	syscall.Stat(filepath.Join(mnt, "data/copy.bin"), &st)
	if want := int64(1557126490); st.Mtim.Sec != want {
		t.Errorf("touch -d: mtime %d, want %d", st.Mtim.Sec, want)
	}
	unmountAndClose(t, srv)
	fsckClean(t, img)

	// mtools lists the same tree.
	out := run(t, "mdir", "-/", "-b", "-i", img, "::")
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		got = append(got, strings.TrimPrefix(strings.TrimSuffix(line, "/"), "::/"))
	}
	var want []string
	filepath.WalkDir(ref, func(p string, d fs.DirEntry, err error) error {
		if rel, _ := filepath.Rel(ref, p); rel != "." {
			want = append(want, rel)
		}
		return nil
	})
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("mdir -/ -b lists\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// And mediafs reads the same bytes.
	f := openRO(t, img)
	defer f.Close()
	for _, rel := range regularFiles(t, ref) {
		want, _ := os.ReadFile(filepath.Join(ref, rel))
		got, err := fs.ReadFile(f, filepath.ToSlash(rel))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s in the image: %d bytes, %v; want %d bytes", rel, len(got), err, len(want))
		}
	}
}

// TestWriteErrors checks the errno of each kind of refusal through a
// read-write mount.
func TestWriteErrors(t *testing.T) {
	needFUSE(t)
	img := newFAT(t, "fat12", 1<<20)
	mnt, srv := mountRW(t, img)
	p := func(s string) string { return filepath.Join(mnt, s) }
	if err := os.Mkdir(p("dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p("dir/file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(p("ro.txt"), []byte("read-only"), 0o444) // the read-only attribute
	for _, tc := range []struct {
		what string
		err  error
		want syscall.Errno
	}{
		{"mkdir over a directory", os.Mkdir(p("dir"), 0o755), syscall.EEXIST},
		{"mkdir over a file, another case", os.Mkdir(p("DIR/FILE"), 0o755), syscall.EEXIST},
		{"rmdir of a non-empty directory", syscall.Rmdir(p("dir")), syscall.ENOTEMPTY},
		{"rmdir of a file", syscall.Rmdir(p("dir/file")), syscall.ENOTDIR},
		{"unlink of a directory", syscall.Unlink(p("dir")), syscall.EISDIR},
		{"a name FAT cannot hold", os.WriteFile(p("a:b"), nil, 0o644), syscall.EINVAL},
		{"a name with a trailing dot", os.WriteFile(p("bad."), nil, 0o644), syscall.EINVAL},
		{"a missing file", syscall.Unlink(p("missing")), syscall.ENOENT},
		{"a file as a directory", os.WriteFile(p("dir/file/x"), nil, 0o644), syscall.ENOTDIR},
		{"renaming a directory over a file", os.Rename(p("dir"), p("ro.txt")), syscall.ENOTDIR},
		{"a hard link", os.Link(p("dir/file"), p("link")), syscall.EPERM},
		{"a symbolic link", os.Symlink("dir/file", p("symlink")), syscall.EPERM},
		{"a FIFO", syscall.Mkfifo(p("fifo"), 0o644), syscall.EPERM},
		{"chown to another user", os.Chown(p("dir/file"), 4242, 4242), syscall.EPERM},
		{"writing a read-only file", writeExisting(p("ro.txt")), syscall.EACCES},
	} {
		if got := errnoOf(tc.err); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.what, tc.err, tc.want)
		}
	}
	// Filling the volume: ENOSPC, and the file written so far is whole.
	f, err := os.Create(p("fill"))
	if err != nil {
		t.Fatal(err)
	}
	var err2 error
	for _, n := range []int{64 << 10, 512} { // then what is left, piece by piece
		chunk := bytes.Repeat([]byte{0xA5}, n)
		err2 = nil
		for i := 0; i < 4096 && err2 == nil; i++ {
			_, err2 = f.Write(chunk)
		}
		if errnoOf(err2) != syscall.ENOSPC {
			t.Errorf("filling the volume: %v, want ENOSPC", err2)
		}
	}
	f.Close()
	var sfs syscall.Statfs_t
	if err := syscall.Statfs(mnt, &sfs); err != nil || sfs.Bfree != 0 {
		t.Errorf("statfs of the full volume: %v, %d blocks free", err, sfs.Bfree)
	}
	if err := os.Remove(p("fill")); err != nil {
		t.Fatal(err)
	}
	unmountAndClose(t, srv)
	fsckClean(t, img)
}

func writeExisting(p string) error {
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	return errors.Join(errors.New("opened"), f.Close())
}

// TestStatfs checks that statfs reports the volume's real free space, and
// that it shrinks as a file grows.
func TestStatfs(t *testing.T) {
	needFUSE(t)
	img := newFAT(t, "fat16", 32<<20)
	w, err := mediafs.OpenWritable(img)
	if err != nil {
		t.Fatal(err)
	}
	info := w.Info()
	mnt, _ := mountFS(t, w, Options{Writable: true})
	var st syscall.Statfs_t
	if err := syscall.Statfs(mnt, &st); err != nil {
		t.Fatal(err)
	}
	if got := int64(st.Bfree) * st.Bsize; got != *info.Free {
		t.Errorf("free %d bytes, Info says %d", got, *info.Free)
	}
	if got := int64(st.Blocks) * st.Bsize; got != info.Size {
		t.Errorf("size %d bytes, Info says %d", got, info.Size)
	}
	if err := os.WriteFile(filepath.Join(mnt, "f"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	var after syscall.Statfs_t
	syscall.Statfs(mnt, &after)
	if used := int64(st.Bfree-after.Bfree) * st.Bsize; used != 1<<20 {
		t.Errorf("writing 1 MiB used %d bytes", used)
	}
}

// TestChmodReadOnly: chmod through a read-write mount keeps what FAT can
// keep of a mode, the read-only attribute (mtools shows it), and takes it
// away again.
func TestChmodReadOnly(t *testing.T) {
	needFUSE(t)
	img := newFAT(t, "fat16", 16<<20)
	mnt, srv := mountRW(t, img)
	p := filepath.Join(mnt, "notes.txt")
	if err := os.WriteFile(p, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	mode := func() fs.FileMode {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}
	if err := os.Chmod(p, 0o444); err != nil {
		t.Fatal(err)
	}
	if m := mode(); m&0o222 != 0 {
		t.Errorf("after chmod 0444: %v", m)
	}
	os.WriteFile(filepath.Join(mnt, "other.txt"), nil, 0o644)
	unmountAndClose(t, srv)
	attrs := func(name string) uint8 {
		f := openRO(t, img)
		defer f.Close()
		fi, err := f.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*fat.Sys).Attrs
	}
	if a := attrs("notes.txt"); a&fatReadOnly == 0 {
		t.Errorf("attributes %#x: not read-only", a)
	}
	if a := attrs("other.txt"); a&fatReadOnly != 0 {
		t.Errorf("other file: attributes %#x", a)
	}
	if _, err := exec.LookPath("mattrib"); err == nil {
		// "  A    R     ::/notes.txt": the letters before the name.
		out := run(t, "mattrib", "-i", img, "::/notes.txt")
		if f := strings.Fields(out); !slices.Contains(f[:max(len(f)-1, 0)], "R") {
			t.Errorf("mattrib: %q", out)
		}
	}
	mnt, srv = mountRW(t, img)
	if err := os.Chmod(filepath.Join(mnt, "notes.txt"), 0o644); err != nil {
		t.Fatal(err)
	}
	unmountAndClose(t, srv)
	if a := attrs("notes.txt"); a&fatReadOnly != 0 {
		t.Errorf("after chmod 0644: attributes %#x", a)
	}
	fsckClean(t, img)
}
