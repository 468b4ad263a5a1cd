package fat

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mediafs/mediafs/device"
)

// Tests of what a bad sector may do to a writable volume (issue "Bad
// sectors", T-FAT-3 to T-FAT-8 of the research notes): the error comes
// back naming the sector and the file, nothing stays held, the rest of the
// volume keeps working, and the volume is marked for a disk check.

// within runs f and fails the test if it takes longer than d: a hang is
// the failure these tests exist for.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s: no answer after %v (a hang)", what, d)
	}
}

// released checks that the failed request left nothing held: no pinned
// block, and the volume lock free.
func released(t *testing.T, v *FS) {
	t.Helper()
	if st := v.CacheStats(); st.Pins != 0 || st.Pinned != 0 {
		t.Fatalf("blocks still pinned: %+v", st)
	}
	if !v.mu.TryLock() {
		t.Fatal("the volume lock is still held")
	}
	v.mu.Unlock()
}

// stateOf reads the boot sector's state byte and FAT[1] of an unmounted
// volume.
func stateOf(t *testing.T, d device.Device) (state byte, info Info) {
	t.Helper()
	v := mustOpen(t, d, Options{})
	b, err := v.cache.Get(0)
	if err != nil {
		t.Fatal(err)
	}
	state = b.Data[v.bs.extOffset()+1]
	v.cache.Release(b)
	return state, v.Info()
}

// fsckOnlyDirty runs fsck.fat -n and accepts no finding but the dirty bit.
func fsckOnlyDirty(t *testing.T, img string) {
	t.Helper()
	out, _ := exec.Command("fsck.fat", "-n", img).CombinedOutput()
	if !strings.Contains(string(out), "Dirty bit") {
		t.Errorf("fsck.fat does not see the dirty bit:\n%s", out)
	}
	// Like Windows and Linux, mediafs keeps the dirty state in the boot
	// sector only, not in FAT32's backup: fsck notes the one byte (65,
	// 0x41) that differs and calls it harmless.
	ok := regexp.MustCompile(`(?i)^(fsck\.fat|dirty bit|automatically removing|leaving|.*files, .*clusters|there are differences between boot sector and its backup\.|this is mostly harmless\. differences: \(offset:original/backup\)|65:0[13]/00|not automatically fixing this\.|\s*$)`)
	for _, l := range strings.Split(string(out), "\n") {
		if !ok.MatchString(strings.TrimSpace(l)) {
			t.Errorf("fsck.fat -n finds more than the dirty bit: %q\n%s", l, out)
			return
		}
	}
}

// TestFailedDataWrite is T-FAT-3 and T-FAT-6: a large copy onto 2048-byte
// sector media meets a sector that cannot be written.
func TestFailedDataWrite(t *testing.T) {
	needTools(t, "fsck.fat")
	for _, markBad := range []bool{false, true} {
		t.Run(fmt.Sprintf("mark-bad-%v", markBad), func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			img, d := newImage(t, 160<<20, 2048, FormatOptions{Type: "fat32"})
			fd := device.NewFaulty(d)
			v, err := Open(fd, Options{Writable: true, MarkBadClusters: markBad})
			if err != nil {
				t.Fatal(err)
			}
			other := randBytes(1, 300<<10)
			writeAll(t, v, "other.bin", other)
			f, err := v.OpenFile("big.bin", os.O_CREATE|os.O_RDWR, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			want := randBytes(2, 24<<20)
			if _, err := f.Write(want[:4<<20]); err != nil {
				t.Fatal(err)
			}
			rs, err := f.MediumRanges(0, 4<<20)
			if err != nil {
				t.Fatal(err)
			}
			// A sector a few MiB further on: the file's next clusters.
			badOff := rs[len(rs)-1].End() + 3<<20 + 7*2048
			fd.FailWrites(badOff, 2048)
			written := int64(4 << 20)
			var werr error
			within(t, 10*time.Second, "the copy", func() {
				for written < int64(len(want)) {
					if _, werr = f.Write(want[written : written+1<<20]); werr != nil {
						return
					}
					written += 1 << 20
				}
			})
			if werr == nil {
				t.Fatal("the copy went through a bad sector without an error")
			}
			sec := fmt.Sprintf("sector %d", badOff/2048)
			if !errors.Is(werr, device.ErrBadSector) || !strings.Contains(werr.Error(), "/big.bin") || !strings.Contains(werr.Error(), sec) {
				t.Fatalf("error %q: want the file, %s and ErrBadSector", werr, sec)
			}
			released(t, v)
			fi, _ := f.Stat()
			if fi.Size() != written {
				t.Fatalf("size %d after the failure, want %d (what was written)", fi.Size(), written)
			}
			// Everything else still works: the same file through a new
			// handle (read, append), the other file, a new file.
			if !markBad {
				fd.Heal() // an image file's fault; a real disk's would stay
			}
			within(t, 10*time.Second, "using the volume after the failure", func() {
				if got := readAllFS(t, v, "big.bin"); !bytes.Equal(got, want[:written]) {
					t.Error("big.bin's bytes are wrong after the failure")
				}
				g, err := v.OpenFile("big.bin", os.O_WRONLY|os.O_APPEND, 0)
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := g.Write(want[written:]); err != nil {
					t.Errorf("append after the failure: %v", err)
				}
				g.Close()
				if got := readAllFS(t, v, "other.bin"); !bytes.Equal(got, other) {
					t.Error("other.bin damaged")
				}
				writeAll(t, v, "later.txt", []byte("still works"))
			})
			f.Close()
			if got := readAllFS(t, v, "big.bin"); !bytes.Equal(got, want) {
				t.Error("big.bin wrong after the append")
			}
			if err := v.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			released(t, v)
			state, inf := stateOf(t, d)
			if state&(stateDirty|stateHardErr) != stateDirty|stateHardErr || !inf.Dirty || !inf.HardError {
				t.Errorf("after a media error: state byte %#x, dirty %v, hard error %v; want both bits and both marks", state, inf.Dirty, inf.HardError)
			}
			if markBad {
				v2 := mustOpen(t, d, Options{})
				c := uint32((badOff-v2.g.clusterOffset(2))/int64(v2.g.clusterSize)) + 2
				if e, err := v2.fatEntry(c); err != nil || e != v2.g.badMark() {
					t.Errorf("cluster %d: FAT entry %#x (%v), want the bad mark", c, e, err)
				}
			}
			fsckOnlyDirty(t, img)
		})
	}
}

// TestFailedReads is T-FAT-4: a read error in a large read, and in the
// FAT while a chain is followed, comes back at once; the volume goes on.
func TestFailedReads(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	_, d := newImage(t, 64<<20, 512, FormatOptions{Type: "fat16"})
	v := mountRW(t, d)
	// Two files written in turns, so that their chains interleave and
	// span several FAT sectors.
	a, b := randBytes(3, 6<<20), randBytes(4, 6<<20)
	fa, _ := v.OpenFile("a.bin", os.O_CREATE|os.O_WRONLY, 0o644)
	fb, _ := v.OpenFile("b.bin", os.O_CREATE|os.O_WRONLY, 0o644)
	for off := 0; off < len(a); off += 64 << 10 {
		fa.Write(a[off : off+64<<10])
		fb.Write(b[off : off+64<<10])
	}
	fa.Close()
	fb.Close()
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}

	fd := device.NewFaulty(d)
	v = mountRW(t, fd)
	f, err := v.Open("a.bin")
	if err != nil {
		t.Fatal(err)
	}
	rs, _ := f.(*File).MediumRanges(0, int64(len(a)))
	mid := rs[len(rs)/2].Off + 512
	fd.FailReads(mid, 512)
	var rerr error
	within(t, 10*time.Second, "a large read", func() { _, rerr = io.ReadAll(f) })
	if !errors.Is(rerr, device.ErrBadSector) || !strings.Contains(rerr.Error(), fmt.Sprintf("sector %d", mid/512)) || !strings.Contains(rerr.Error(), "/a.bin") {
		t.Fatalf("read error %v: want the file and sector %d", rerr, mid/512)
	}
	f.Close()
	released(t, v)
	if got := readAllFS(t, v, "b.bin"); !bytes.Equal(got, b) {
		t.Fatal("b.bin unreadable after a.bin's bad sector")
	}
	fd.Heal()

	// The FAT: remount (empty cache) with b.bin's chain half way through
	// its FAT sectors unreadable.
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	fd = device.NewFaulty(d)
	v = mountRW(t, fd)
	fbr, err := v.Open("b.bin")
	if err != nil {
		t.Fatal(err)
	}
	brs, _ := fbr.(*File).MediumRanges(0, int64(len(b)))
	c := uint32((brs[len(brs)-2].Off-v.g.clusterOffset(2))/int64(v.g.clusterSize)) + 2
	fatSec := v.g.fatEntryOffset(0, c) / 512
	fbr.Close()
	v.Close()
	v = mountRW(t, fd) // the chain is read afresh, through the bad sector
	fd.FailReads(fatSec*512, 512)
	// The second FAT copy stands in for the first.
	var got []byte
	within(t, 10*time.Second, "a read through an unreadable FAT sector", func() {
		got, rerr = readFileErr(v, "b.bin")
	})
	if rerr != nil || !bytes.Equal(got, b) {
		t.Fatalf("with FAT 1's sector bad and FAT 2 good: %v", rerr)
	}
	// Both copies bad: the chain cannot be followed.
	v.Close()
	fd.FailReads(v.g.fatEntryOffset(1, c)/512*512, 512)
	v = mountRW(t, fd)
	within(t, 10*time.Second, "a read through unreadable FAT sectors", func() {
		_, rerr = readFileErr(v, "b.bin")
	})
	if !errors.Is(rerr, device.ErrBadSector) || !strings.Contains(rerr.Error(), fmt.Sprintf("sector %d", fatSec)) || !strings.Contains(rerr.Error(), "/b.bin") {
		t.Fatalf("chain read error %v: want b.bin and sector %d", rerr, fatSec)
	}
	released(t, v)
	fd.Heal()
	if got := readAllFS(t, v, "a.bin"); !bytes.Equal(got, a) {
		t.Fatal("a.bin unreadable once the sector is good again")
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	state, inf := stateOf(t, d)
	if state&stateHardErr == 0 || !inf.HardError || !inf.Dirty {
		t.Errorf("a writable volume that met a read error: state %#x, hard error %v, dirty %v", state, inf.HardError, inf.Dirty)
	}
}

func readFileErr(v *FS, name string) ([]byte, error) {
	f, err := v.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// TestFailedMetadataWrite is T-FAT-5: the FAT sector or the directory
// entry's sector cannot be written while a file grows.
func TestFailedMetadataWrite(t *testing.T) {
	needTools(t, "fsck.fat")
	for _, through := range []bool{true, false} {
		for _, what := range []string{"fat", "dirent"} {
			t.Run(fmt.Sprintf("%s-writethrough-%v", what, through), func(t *testing.T) {
				defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
				img, d := newImage(t, 64<<20, 512, FormatOptions{Type: "fat16"})
				v := mountRW(t, d)
				// keep.bin first and large, so that grow.bin's FAT entries
				// are not in the FAT's first sector (which holds FAT[1]
				// and its marks).
				keep := randBytes(6, 1<<20)
				writeAll(t, v, "keep.bin", keep)
				old := randBytes(5, 3000)
				writeAll(t, v, "grow.bin", old)
				if err := v.Close(); err != nil {
					t.Fatal(err)
				}
				fd := device.NewFaulty(d)
				v, err := Open(fd, Options{Writable: true, WriteThrough: through})
				if err != nil {
					t.Fatal(err)
				}
				f, err := v.OpenFile("grow.bin", os.O_RDWR|os.O_APPEND, 0)
				if err != nil {
					t.Fatal(err)
				}
				var bad int64
				switch what {
				case "fat": // the sector of the FAT entries the growth will use
					rs, _ := f.MediumRanges(0, 3000)
					c := uint32((rs[0].End()-1-v.g.clusterOffset(2))/int64(v.g.clusterSize)) + 2
					bad = v.g.fatEntryOffset(0, c) / 512
				case "dirent":
					bad = f.st.n.off / 512
				}
				fd.FailWrites(bad*512, 512)
				var werr, cerr error
				within(t, 10*time.Second, "the growing write and Close", func() {
					_, werr = f.Write(randBytes(7, 200<<10))
					released(t, v)
					if fi, _ := f.Stat(); werr != nil && fi.Size() != 3000 {
						t.Errorf("size %d in memory after the failure, want 3000 (rolled back)", fi.Size())
					}
					f.Close()
					cerr = v.Close()
				})
				if werr == nil && cerr == nil {
					t.Fatal("neither the write nor Close failed")
				}
				for _, err := range []error{werr, cerr} {
					if err != nil && !strings.Contains(err.Error(), fmt.Sprintf("sector %d", bad)) {
						t.Errorf("error %v does not name sector %d", err, bad)
					}
				}
				released(t, v)
				if st := v.CacheStats(); st.Dirty != 0 {
					t.Errorf("dirty blocks held after Close: %+v", st)
				}
				state, inf := stateOf(t, d)
				if state&(stateDirty|stateHardErr) != stateDirty|stateHardErr || !inf.Dirty || !inf.HardError {
					t.Errorf("state byte %#x dirty %v hard error %v: want all marks", state, inf.Dirty, inf.HardError)
				}
				v2 := mustOpen(t, d, Options{})
				if got := readAllFS(t, v2, "keep.bin"); !bytes.Equal(got, keep) {
					t.Error("keep.bin damaged")
				}
				got := readAllFS(t, v2, "grow.bin")
				if !bytes.Equal(got[:min(len(got), 3000)], old[:min(len(got), 3000)]) || len(got) < 3000 {
					t.Error("grow.bin lost its old bytes")
				}
				out, _ := exec.Command("fsck.fat", "-n", img).CombinedOutput()
				if !strings.Contains(string(out), "Dirty bit") {
					t.Errorf("fsck.fat does not report the dirty bit:\n%s", out)
				}
			})
		}
	}
}

// TestCorruptChainMarksDirty is T-FAT-8's last clause: a corrupt chain met
// on a writable volume leaves it marked dirty (not hard error).
func TestCorruptChainMarksDirty(t *testing.T) {
	_, d := newImage(t, 32<<20, 512, FormatOptions{Type: "fat16"})
	v := mountRW(t, d)
	writeAll(t, v, "f.bin", randBytes(8, 20000))
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	v = mountRW(t, d)
	f, _ := v.OpenFile("f.bin", os.O_RDONLY, 0)
	rs, _ := f.MediumRanges(0, 20000)
	f.Close()
	c := uint32((rs[0].Off-v.g.clusterOffset(2))/int64(v.g.clusterSize)) + 2
	v.Close()
	// Free an entry in the middle of the chain, in every FAT copy.
	for i := range v.g.numFATs {
		off := v.g.fatEntryOffset(i, c+2)
		if _, err := d.WriteAt([]byte{0, 0}, off); err != nil {
			t.Fatal(err)
		}
	}
	v = mountRW(t, d)
	if _, err := readFileErr(v, "f.bin"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read of a chain with a free entry: %v, want ErrCorrupt", err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	_, inf := stateOf(t, d)
	if !inf.Dirty || inf.HardError {
		t.Errorf("after a corrupt chain: dirty %v hard error %v; want dirty only", inf.Dirty, inf.HardError)
	}
}

// TestStressBadSectors is the stress test (and T-FAT-7): 8
// goroutines read and write their own files over a medium with random bad
// sectors, under the race detector in CI. No operation may take longer
// than a generous bound; at the end every file that no error touched has
// exactly its bytes, and nothing is pinned, locked or leaked.
func TestStressBadSectors(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const workers, filesEach = 8, 3
	ops := 400
	if *long {
		ops = 2000
	}
	img, d := newImage(t, 256<<20, 2048, FormatOptions{Type: "fat32"})
	fd := device.NewFaulty(d)
	v, err := Open(fd, Options{Writable: true, MarkBadClusters: true})
	if err != nil {
		t.Fatal(err)
	}
	// Random bad sectors, for reads and writes, in the first 32 MiB of
	// the data area, where the files will be.
	r0 := rand.New(rand.NewPCG(99, 1))
	first := v.g.clusterOffset(2) / 2048
	for range 40 {
		fd.FailSectors(first+r0.Int64N(32<<20/2048), 1)
	}
	type file struct {
		name    string
		data    []byte
		touched bool // an error hit it: its bytes are not known
	}
	files := make([][]*file, workers)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var slowest time.Duration
	var failures, oks int
	// Every directory first, before any worker runs (a t.Fatal with
	// workers running would leave them behind). A new directory's
	// cluster may be a bad one: Mkdir then fails with a media error,
	// marks the cluster bad, and a retry gets another.
	for w := range workers {
		for i := range filesEach {
			files[w] = append(files[w], &file{name: fmt.Sprintf("w%d/f%d.bin", w, i)})
		}
		var err error
		for try := 0; try < 10; try++ {
			if err = v.Mkdir(fmt.Sprintf("w%d", w), 0o755); err == nil || !device.IsMediaError(err) {
				break
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 2))
			for range ops {
				fl := files[w][r.IntN(filesEach)]
				start := time.Now()
				err := stressOp(v, r, &fl.data, fl.name, fl.touched)
				el := time.Since(start)
				mu.Lock()
				slowest = max(slowest, el)
				if err != nil {
					failures++
					if !device.IsMediaError(err) {
						mu.Unlock()
						t.Errorf("%s: %v (not a media error)", fl.name, err)
						return
					}
					fl.touched = true
				} else {
					oks++
				}
				mu.Unlock()
			}
		}()
	}
	within(t, 5*time.Minute, "the stress run", wg.Wait)
	if slowest > 20*time.Second {
		t.Errorf("an operation took %v", slowest)
	}
	t.Logf("%d operations went through, %d failed on bad sectors; slowest %v", oks, failures, slowest)
	released(t, v)
	for _, fs := range files {
		for _, fl := range fs {
			if fl.touched {
				continue
			}
			got, err := readFileErr(v, fl.name)
			if err != nil || !bytes.Equal(got, fl.data) {
				t.Errorf("%s: untouched by any error, but reads %d bytes (%v), want %d", fl.name, len(got), err, len(fl.data))
			}
		}
	}
	if err := v.Close(); err != nil {
		t.Logf("Close: %v", err)
	}
	released(t, v)
	if st := v.CacheStats(); st.Dirty != 0 {
		t.Errorf("dirty blocks held after Close: %+v", st)
	}
	if failures > 0 {
		if _, inf := stateOf(t, d); !inf.HardError {
			t.Error("media errors met, but the volume is not marked")
		}
	}
	// T-FAT-7: the structure is sound; what failed cost nothing but the
	// dirty mark (the bad clusters are marked, not lost).
	if _, err := exec.LookPath("fsck.fat"); err == nil {
		fsckOnlyDirty(t, img)
	}
}

// stressOp does one random operation on the file name, keeping *data (the
// file's expected bytes) in step when it succeeds.
func stressOp(v *FS, r *rand.Rand, data *[]byte, name string, touched bool) error {
	switch r.IntN(5) {
	case 0, 1: // write a large piece somewhere (maybe past the end)
		n := 1 + r.IntN(700<<10)
		off := r.IntN(len(*data) + 64<<10)
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(r.Uint32())
		}
		f, err := v.OpenFile(name, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := f.WriteAt(p, int64(off)); err != nil {
			return err
		}
		if need := off + n; need > len(*data) {
			*data = append(*data, make([]byte, need-len(*data))...)
		}
		copy((*data)[off:], p)
	case 2: // read it all
		got, err := readFileErr(v, name)
		if errors.Is(err, os.ErrNotExist) && len(*data) == 0 {
			return nil
		}
		if err != nil {
			return err
		}
		if !touched && !bytes.Equal(got, *data) {
			return fmt.Errorf("%s: read %d bytes that differ from the %d written", name, len(got), len(*data))
		}
	case 3: // truncate
		f, err := v.OpenFile(name, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		n := r.IntN(len(*data) + 1)
		if err := f.Truncate(int64(n)); err != nil {
			return err
		}
		if n <= len(*data) {
			*data = (*data)[:n]
		}
	case 4: // read a piece
		f, err := v.Open(name)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		defer f.Close()
		if len(*data) == 0 {
			return nil
		}
		off := r.IntN(len(*data))
		n := min(len(*data)-off, 1+r.IntN(300<<10))
		p := make([]byte, n)
		if _, err := f.(*File).ReadAt(p, int64(off)); err != nil && err != io.EOF {
			return err
		}
		if !touched && !bytes.Equal(p, (*data)[off:off+n]) {
			return fmt.Errorf("%s: bytes %d+%d differ", name, off, n)
		}
	}
	return nil
}

// TestHungDrive: a drive that stops answering in the middle of a write
// gives the writer an error within the timeout, not a hang; the volume
// lock is free again, later requests fail at once, and once the drive
// answers again the abandoned request's goroutine ends (nothing leaks).
func TestHungDrive(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	_, d := newImage(t, 32<<20, 512, FormatOptions{Type: "fat16"})
	fd := device.NewFaulty(d)
	td := device.NewTimeout(fd, 100*time.Millisecond)
	v := mountRW(t, td)
	writeAll(t, v, "before.txt", []byte("written before the hang"))
	f, err := v.OpenFile("during.bin", os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fd.Block()
	var werr error
	within(t, 10*time.Second, "a write to a hung drive", func() { _, werr = f.Write(randBytes(9, 1<<20)) })
	if !errors.Is(werr, device.ErrTimeout) || !strings.Contains(werr.Error(), "/during.bin") {
		t.Fatalf("write to a hung drive: %v, want ErrTimeout naming the file", werr)
	}
	released(t, v)
	within(t, 10*time.Second, "requests after the hang", func() {
		if _, err := readFileErr(v, "before.txt"); err != nil && !errors.Is(err, device.ErrTimeout) {
			t.Errorf("read after the hang: %v", err)
		}
		f.Close()
		v.Close()
	})
	released(t, v)
	if td.Abandoned() < 1 {
		t.Errorf("abandoned %d requests, want at least 1", td.Abandoned())
	}
	fd.Unblock()
}

// TestFailedCommitKeepsOrder: a batch whose FAT cannot be written, then a
// change that writes through (remove, truncate, rename), then Close: the
// batch's directory entries must never reach the medium ahead of their FAT
// (found in review: the write-through change's end wrote the batch's
// directories first).
func TestFailedCommitKeepsOrder(t *testing.T) {
	for _, op := range []string{"remove", "truncate", "rename"} {
		t.Run(op, func(t *testing.T) {
			img, d := newImage(t, 64<<20, 512, FormatOptions{Type: "fat16"})
			v := mountRW(t, d)
			writeAll(t, v, "keep.bin", randBytes(6, 1<<20))
			writeAll(t, v, "other.txt", randBytes(7, 5000))
			if err := v.Close(); err != nil {
				t.Fatal(err)
			}
			fd := device.NewFaulty(d)
			v = mountRW(t, fd)
			writeAll(t, v, "new.bin", randBytes(8, 40000)) // batched
			f, _ := v.OpenFile("new.bin", os.O_RDONLY, 0)
			rs, _ := f.MediumRanges(0, 40000)
			f.Close()
			c := uint32((rs[0].Off-v.g.clusterOffset(2))/int64(v.g.clusterSize)) + 2
			fd.FailWrites(v.g.fatEntryOffset(0, c)/512*512, 512)
			var err error
			switch op {
			case "remove":
				err = v.Remove("other.txt")
			case "truncate":
				g, _ := v.OpenFile("other.txt", os.O_RDWR, 0)
				err = g.Truncate(10)
				g.Close()
			case "rename":
				err = v.Rename("other.txt", "renamed.txt")
			}
			if err == nil {
				t.Fatalf("%s went through though the batch before it could not be written", op)
			}
			v.Close()
			img2, _ := os.ReadFile(img)
			v2 := mustOpen(t, device.NewMemory(img2, 512), Options{})
			if _, err := v2.Stat("new.bin"); err == nil {
				t.Error("new.bin's entry reached the medium though its FAT did not")
			}
			if got := readAllFS(t, v2, "keep.bin"); !bytes.Equal(got, randBytes(6, 1<<20)) {
				t.Error("keep.bin damaged")
			}
		})
	}
}

// TestFATReadAheadAroundBadSectors: reading the FAT ahead of a chain walk
// (fatEntryAhead) never makes a bad sector the walk does not need count:
// no failed read, no hard-error mark on a writable volume (found in
// review). And a bad FAT sector the walk does need, with the mirror good,
// costs the walk two failed reads, not one per entry in the sector.
func TestFATReadAheadAroundBadSectors(t *testing.T) {
	_, d := newImage(t, 24<<20, 512, FormatOptions{Type: "fat16", ClusterSize: 512})
	v := mountRW(t, d)
	want := randBytes(7, 2<<20) // 4,096 clusters: 16 FAT sectors
	writeAll(t, v, "big.bin", want)
	f, err := v.Open("big.bin")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := f.(*File).MediumRanges(0, int64(len(want)))
	f.Close()
	if err != nil || len(rs) != 1 {
		t.Fatalf("big.bin is not one run: %v %v", rs, err)
	}
	firstCl := uint32((rs[0].Off-v.g.clusterOffset(2))/int64(v.g.clusterSize)) + 2
	lastCl := firstCl + uint32(len(want)/512) - 1
	firstFATSec := v.g.fatEntryOffset(0, firstCl) / 512
	lastFATSec := v.g.fatEntryOffset(0, lastCl) / 512
	mirrorFirstSec := v.g.fatEntryOffset(1, firstCl) / 512 // the second copy's
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}

	t.Run("not needed", func(t *testing.T) {
		fd := device.NewFaulty(d)
		bad := lastFATSec + 5 // entries of free clusters only
		fd.FailReads(bad*512, 512)
		v := mountRW(t, fd)
		_, _, f0 := fd.Counts()
		if got := readAllFS(t, v, "big.bin"); !bytes.Equal(got, want) {
			t.Fatal("content differs")
		}
		_, _, f1 := fd.Counts()
		if err := v.Close(); err != nil {
			t.Fatal(err)
		}
		if f1 != f0 {
			t.Errorf("reading big.bin made %d failed reads of FAT sector %d, which its chain does not use", f1-f0, bad)
		}
		if _, inf := stateOf(t, d); inf.HardError || inf.Dirty {
			t.Errorf("only reading a file whose chain avoids the bad sector: hard error %v, dirty %v", inf.HardError, inf.Dirty)
		}
	})
	t.Run("needed, mirror good", func(t *testing.T) {
		fd := device.NewFaulty(d)
		bad := (firstFATSec + lastFATSec) / 2
		fd.FailReads(bad*512, 512)
		r := mustOpen(t, fd, Options{})
		f, err := r.Open("big.bin")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		_, _, f0 := fd.Counts()
		// One read of it all: the walk reads the FAT ahead over the bad
		// sector from every sector before it, unless it remembers.
		got := make([]byte, len(want))
		if n, err := f.(*File).ReadAt(got, 0); err != nil || n != len(want) || !bytes.Equal(got, want) {
			t.Fatalf("content differs (%d bytes, %v): the mirror FAT should serve", n, err)
		}
		// The walk remembers the bad sector and reads its other 255
		// entries from the mirror: one failed read-ahead and one failed
		// single read, not one per entry (on a dying drive each may take
		// seconds).
		if _, _, f1 := fd.Counts(); f1-f0 > 2 {
			t.Errorf("%d failed reads for one bad FAT sector of 256 entries", f1-f0)
		}
	})
	t.Run("needed, both copies bad, then readable", func(t *testing.T) {
		fd := device.NewFaulty(d)
		sec := (firstFATSec + lastFATSec) / 2
		mirror := mirrorFirstSec + (sec - firstFATSec)
		fd.FailReads(sec*512, 512)
		fd.FailReads(mirror*512, 512)
		r := mustOpen(t, fd, Options{})
		f, err := r.Open("big.bin")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		got := make([]byte, len(want))
		if _, err := f.(*File).ReadAt(got, 0); !device.IsMediaError(err) {
			t.Fatalf("both FAT copies bad: %v", err)
		}
		// The medium recovers (a transient error): the same open file
		// reads it all, the walk's memory notwithstanding.
		fd.Heal()
		if n, err := f.(*File).ReadAt(got, 0); err != nil || !bytes.Equal(got[:n], want) || n != len(want) {
			t.Errorf("after the medium recovered: %d bytes, %v", n, err)
		}
	})
}
