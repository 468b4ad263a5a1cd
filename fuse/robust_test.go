package fuse

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mediafs/mediafs"
	"github.com/mediafs/mediafs/device"
	"github.com/mediafs/mediafs/fat"
	"github.com/mediafs/mediafs/iso9660/mkiso"
)

// damagedFile is the file the fault-injection tests break, and where.
const (
	damagedFile = "data/f0070000.bin"
	damageAt    = 40960 // bytes into the file; the first 40 KiB stay readable
	damageLen   = 2048
)

// faultyImage loads img into memory behind a device.Faulty that fails
// reads of damagedFile's bytes [damageAt, damageAt+damageLen).
func faultyImage(t *testing.T, img string, sectorSize int) *device.Faulty {
	t.Helper()
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if r := len(data) % sectorSize; r != 0 {
		data = append(data, make([]byte, sectorSize-r)...)
	}
	ref, err := mediafs.OpenDevice(device.NewMemory(append([]byte(nil), data...), sectorSize))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	f, err := ref.Open(damagedFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rs, err := f.(mediumRanger).MediumRanges(damageAt, damageLen)
	if err != nil || len(rs) == 0 {
		t.Fatalf("MediumRanges: %v %v", rs, err)
	}
	fd := device.NewFaulty(device.NewMemory(data, sectorSize))
	for _, r := range rs {
		fd.FailReads(r.Off, r.Len)
	}
	return fd
}

// TestDamagedParallelReaders reads every file of a damaged image (FAT and
// ISO 9660) from 8 goroutines at once: the damaged file fails with EIO
// (and its bytes before the damage still read), every other file reads
// right, and nothing hangs.
func TestDamagedParallelReaders(t *testing.T) {
	needFUSE(t)
	files := sourceFiles()
	src := writeTree(t, files, false)
	for _, tc := range []struct {
		name string
		img  string
		ss   int
	}{
		{"fat16", buildFAT(t, "fat16", 24<<20, src), 512},
		{"iso", buildISO(t, src, mkiso.Options{RockRidge: true}), 2048},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fd := faultyImage(t, tc.img, tc.ss)
			fsys, err := mediafs.OpenDevice(fd)
			if err != nil {
				t.Fatal(err)
			}
			mnt, srv := mountFS(t, fsys, Options{})
			names := regularFiles(t, src)
			done := make(chan struct{})
			var wg sync.WaitGroup
			var mu sync.Mutex
			var failures []string
			fail := func(format string, a ...any) {
				mu.Lock()
				failures = append(failures, fmt.Sprintf(format, a...))
				mu.Unlock()
			}
			for g := 0; g < 8; g++ {
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					for pass := 0; pass < 3; pass++ {
						for i := range names {
							name := names[(i+g)%len(names)]
							got, err := os.ReadFile(filepath.Join(mnt, name))
							switch {
							case name == damagedFile:
								if errnoOf(err) != syscall.EIO {
									fail("%s: %v, want EIO", name, err)
								}
							case err != nil:
								fail("%s: %v", name, err)
							case !bytes.Equal(got, files[name]):
								fail("%s: wrong bytes", name)
							}
						}
					}
				}(g)
			}
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("readers hang")
			}
			for _, f := range failures {
				t.Error(f)
			}
			// The bytes before the damage read, and the page with it does not.
			f, err := os.Open(filepath.Join(mnt, damagedFile))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			head := make([]byte, 8192)
			if _, err := f.ReadAt(head, 0); err != nil || !bytes.Equal(head, files[damagedFile][:8192]) {
				t.Errorf("the start of the damaged file: %v", err)
			}
			if _, err := f.ReadAt(head[:100], damageAt+100); errnoOf(err) != syscall.EIO {
				t.Errorf("reading at the damage: %v, want EIO", err)
			}
			if srv.m.spliced.Load() != 0 {
				t.Errorf("%d reads bypassed the faulty device", srv.m.spliced.Load())
			}
		})
	}
}

// TestHungMedium blocks the medium: a read that reaches it fails with EIO
// after the I/O timeout instead of hanging, while what the kernel has
// cached keeps being served.
func TestHungMedium(t *testing.T) {
	needFUSE(t)
	files := sourceFiles()
	src := writeTree(t, files, false)
	img := buildISO(t, src, mkiso.Options{RockRidge: true})
	data, _ := os.ReadFile(img)
	fd := device.NewFaulty(device.NewMemory(data, 2048))
	to := device.NewTimeout(fd, 300*time.Millisecond)
	fsys, err := mediafs.OpenDevice(to)
	if err != nil {
		t.Fatal(err)
	}
	mnt, _ := mountFS(t, fsys, Options{})
	cached := filepath.Join(mnt, "README.TXT")
	if _, err := os.ReadFile(cached); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(mnt, damagedFile)); err != nil {
		t.Fatal(err)
	}
	fd.Block()
	defer fd.Unblock()
	res := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := os.ReadFile(filepath.Join(mnt, damagedFile))
		res <- err
	}()
	// Meanwhile the cached file and the tree answer at once.
	for i := 0; i < 10; i++ {
		t0 := time.Now()
		if got, err := os.ReadFile(cached); err != nil || !bytes.Equal(got, files["README.TXT"]) {
			t.Errorf("cached file while the medium hangs: %v", err)
		}
		if _, err := os.Stat(filepath.Join(mnt, "data")); err != nil {
			t.Errorf("stat while the medium hangs: %v", err)
		}
		if d := time.Since(t0); d > 200*time.Millisecond {
			t.Errorf("a cached read took %v while the medium hangs", d)
		}
	}
	select {
	case err := <-res:
		if errnoOf(err) != syscall.EIO {
			t.Errorf("read from the hung medium: %v, want EIO", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("the read took %v", d)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the read from the hung medium hangs")
	}
}

// TestUnmountWithOpenFiles unmounts while a file is open for reading and
// another for writing: the mount point is free at once (detached lazily),
// the open files fail from then on, what was written is on the volume and
// the volume is clean.
func TestUnmountWithOpenFiles(t *testing.T) {
	needFUSE(t)
	img := newFAT(t, "fat16", 32<<20)
	mnt, srv := mountRW(t, img)
	if err := os.WriteFile(filepath.Join(mnt, "r.txt"), []byte("read me"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := os.Open(filepath.Join(mnt, "r.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w, err := os.Create(filepath.Join(mnt, "w.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write([]byte("written before the unmount")); err != nil {
		t.Fatal(err)
	}
	defer func(d time.Duration) { unmountGrace = d }(unmountGrace)
	unmountGrace = 200 * time.Millisecond
	done := make(chan error, 1)
	go func() { done <- srv.Unmount() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Unmount: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Unmount hangs")
	}
	if mounted(mnt) {
		t.Errorf("%s is still mounted", mnt)
	}
	if !srv.LazilyUnmounted() {
		t.Errorf("the unmount was not lazy although files were open")
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	buf := make([]byte, 4)
	if _, err := r.ReadAt(buf, 0); err == nil {
		t.Errorf("reading an open file after the unmount worked")
	}
	if _, err := w.Write([]byte("after")); err == nil {
		t.Errorf("writing an open file after the unmount worked")
	}
	r.Close()
	w.Close()
	select {
	case <-srv.Done():
	case <-time.After(10 * time.Second):
		t.Errorf("the session did not end after the last file was closed")
	}
	srv.m.closeHost()
	fsckClean(t, img)
	f := openRO(t, img)
	defer f.Close()
	if got, err := fs.ReadFile(f, "w.txt"); err != nil || string(got) != "written before the unmount" {
		t.Errorf("w.txt: %q, %v", got, err)
	}
}

// TestRenameKeepsInode renames an open file and a directory: fstat of the
// open file and stat of the new names keep the inode numbers, and a new
// file in the place the old name left gets a number of its own. Reads and
// writes go on through the renamed open file.
func TestRenameKeepsInode(t *testing.T) {
	needFUSE(t)
	img := newFAT(t, "fat32", 40<<20)
	mnt, srv := mountRW(t, img)
	p := func(s string) string { return filepath.Join(mnt, s) }
	os.Mkdir(p("dir"), 0o755)
	os.Mkdir(p("other"), 0o755)
	if err := os.WriteFile(p("dir/a.txt"), []byte("first"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p("dir/a.txt"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ino := func(name string) uint64 {
		var st syscall.Stat_t
		if err := syscall.Stat(p(name), &st); err != nil {
			t.Fatalf("stat %s: %v", name, err)
		}
		return st.Ino
	}
	fino := func() uint64 {
		var st syscall.Stat_t
		if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
			t.Fatalf("fstat: %v", err)
		}
		return st.Ino
	}
	a, dir := ino("dir/a.txt"), ino("dir")
	if a != fino() {
		t.Fatalf("stat %d, fstat %d", a, fino())
	}
	if err := os.Rename(p("dir/a.txt"), p("other/renamed with a long name.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p("other"), p("moved")); err != nil {
		t.Fatal(err)
	}
	if got := fino(); got != a {
		t.Errorf("fstat after the rename: ino %d, want %d", got, a)
	}
	if got := ino("moved/renamed with a long name.txt"); got != a {
		t.Errorf("stat of the new name: ino %d, want %d", got, a)
	}
	// A new file where a.txt was: most likely its very entry place.
	if err := os.WriteFile(p("dir/a.txt"), []byte("second"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := ino("dir/a.txt"); got == a {
		t.Errorf("the new dir/a.txt has the renamed file's inode %d", got)
	}
	if fi, err := srv.m.lstat("dir/a.txt"); err != nil || fi.Sys().(*fat.Sys).Ino != a {
		t.Errorf("the new dir/a.txt is not in the old one's entry place (%v), so this test proves less than it should", err)
	}
	if got := ino("dir"); got != dir {
		t.Errorf("dir: ino %d, want %d", got, dir)
	}
	// The open file still reads and writes its own bytes.
	if _, err := f.WriteAt([]byte("FIRST"), 0); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p("moved/renamed with a long name.txt"))
	again, _ := os.ReadFile(p("dir/a.txt"))
	if string(got) != "FIRST" || string(again) != "second" {
		t.Errorf("renamed file %q, new file %q", got, again)
	}
	f.Close()
	unmountAndClose(t, srv)
	fsckClean(t, img)
}

// TestSyncAfterIdle checks that a writable mount marks the volume clean
// on the medium when it has been idle for Options.SyncAfter.
func TestSyncAfterIdle(t *testing.T) {
	needFUSE(t)
	img := newFAT(t, "fat16", 32<<20)
	w, err := mediafs.OpenWritable(img)
	if err != nil {
		t.Fatal(err)
	}
	mnt, _ := mountFS(t, w, Options{Writable: true, SyncAfter: 100 * time.Millisecond})
	if err := os.WriteFile(filepath.Join(mnt, "f"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	dirty := func() bool {
		f, err := mediafs.Open(img)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		return *f.Info().Dirty
	}
	deadline := time.Now().Add(5 * time.Second)
	for dirty() {
		if time.Now().After(deadline) {
			t.Fatal("the volume is still dirty on the medium after the mount was idle")
		}
		time.Sleep(50 * time.Millisecond)
	}
	f, err := mediafs.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got, err := fs.ReadFile(f, "f"); err != nil || string(got) != "data" {
		t.Errorf("after the idle sync the image has %q, %v", got, err)
	}
}
