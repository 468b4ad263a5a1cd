package fat

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"time"
	"unicode/utf16"

	"github.com/mediafs/mediafs/device"
)

// The write side.
//
// Every change is written through before the call returns, in an order
// chosen so that a crash at any point leaves at worst lost clusters or the
// one file being written short, never cross-linked chains or a damaged
// directory:
//   - growing a file or a directory: the data (or the zeroed directory
//     cluster) straight to the medium, then the new clusters' FAT entries,
//     then the link from the old last cluster, then the directory entry;
//   - shrinking: the directory entry, then the new end of chain, then the
//     freed entries;
//   - removing: the directory entry, then the FAT;
//   - renaming: the old entry is deleted before the new one is written
//     (a crash in between loses the file into lost clusters, which fsck
//     recovers, rather than leaving two entries on one chain), and a moved
//     directory's ".." is rewritten in between.
//
// Metadata goes through the cache (MarkDirty) and is flushed block by
// block in that order; file data goes straight to the device in one
// request per run of contiguous clusters, and the cache drops its copies of
// the sectors written.
//
// The crash model (crash_test.go) is a medium that stops taking writes
// after some request: each request lands whole or not at all. Two limits
// follow. A batch writes directory blocks in block order, so a new entry
// whose long-name slots and short entry lie in two sectors may be left
// with only its long-name part (fsck removes the orphan). And a FAT12
// entry that straddles two sectors is torn if a drive writes only one of
// them, which can make the old end of a chain point elsewhere; FAT32 and
// FAT16 entries never straddle.
//
// The volume is marked dirty on the medium before the first change (the
// boot sector's state byte 0x25/0x41 bit 0, and FAT[1]'s clean-shutdown
// bit on FAT16/32, in every FAT copy), as Windows does, and marked clean
// again by Sync and Close, unless it was dirty when mounted or a metadata
// write failed (then it stays dirty, for fsck).

func utf16Len(s string) int { return len(utf16.Encode([]rune(s))) }

// begin starts a change: it refuses on a read-only mount, takes the
// volume lock and marks the volume dirty on the medium. end (deferred)
// flushes whatever is left and releases the lock.
func (v *FS) begin(op, name string) error {
	if !v.writable {
		return pathErr(op, name, ErrReadOnlyFS)
	}
	v.mu.Lock()
	if err := v.markDirty(); err != nil {
		v.noteErr(err)
		v.recordTrouble()
		v.mu.Unlock()
		return pathErr(op, name, err)
	}
	v.recordTrouble()
	v.deferring = v.batch
	return nil
}

// change runs fn as one change of name: the path checked, begin, fn,
// end, and fn's error wrapped in a *fs.PathError.
func (v *FS) change(op, name string, fn func() error) (err error) {
	if !fs.ValidPath(name) {
		return &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	if err := v.begin(op, name); err != nil {
		return err
	}
	defer v.end(&err, op, name)
	if err = fn(); err != nil {
		var pe *fs.PathError
		if !errors.As(err, &pe) {
			err = pathErr(op, name, err)
		}
	}
	return err
}

func (v *FS) end(err *error, op, name string) {
	v.noteErr(*err)
	var ferr error
	if v.deferring {
		v.deferring = false
		if v.cache.Stats().Dirty*v.g.sectorSize >= batchLimit {
			ferr = v.commit()
		}
	} else {
		ferr = v.flushAll()
	}
	if ferr != nil && *err == nil {
		*err = pathErr(op, name, ferr)
	}
	v.noteErr(ferr)
	v.recordTrouble()
	v.mu.Unlock()
}

// markDirty writes the dirty marks before the first change.
func (v *FS) markDirty() error {
	if v.dirtyOnDisk {
		return nil
	}
	if err := v.setState(true, false); err != nil {
		return err
	}
	v.dirtyOnDisk = true
	return nil
}

// setState sets or clears the dirty marks and writes them through at
// once (whatever batch is pending: FAT blocks may always go early). With
// hard it also records that the medium failed an I/O: bit 1 of the state
// byte, and FAT[1]'s HrdErrBit cleared (fatgen103; on FAT16/32). Clearing
// never touches the hard-error marks: only a disk check may.
func (v *FS) setState(dirty, hard bool) error {
	blocks := []int64{}
	if v.bs.hasExtBPB() {
		off := int64(v.bs.extOffset() + 1)
		if err := v.modByte(off, func(o byte) byte {
			if !dirty {
				return o &^ stateDirty
			}
			if hard {
				o |= stateHardErr
			}
			return o | stateDirty
		}); err != nil {
			return err
		}
		blocks = append(blocks, 0)
	}
	var clean, ok uint32
	switch v.g.fatType {
	case fat16:
		clean, ok = fat16ClnShut, fat16HrdErr
	case fat32:
		clean, ok = fat32ClnShut, fat32HrdErr
	}
	if clean != 0 {
		e1, err := v.fatEntry(1)
		if err != nil {
			return err
		}
		if dirty {
			e1 &^= clean
			if hard {
				e1 &^= ok
			}
		} else {
			e1 |= clean
		}
		if err := v.setFAT(1, e1); err != nil {
			return err
		}
		for _, i := range v.fatCopies() {
			blocks = append(blocks, v.g.fatEntryOffset(i, 1)/int64(v.g.sectorSize))
		}
	}
	for _, b := range blocks {
		if err := v.cache.FlushRange(b, b+1); err != nil {
			return v.ioErr(err)
		}
	}
	return v.dev.Sync()
}

// noteErr records a media error or a corruption met by any request, so
// that a writable volume is marked to stay dirty (R-FAT-5). It only sets
// flags: the marks are written by the next change, Sync or Close, under
// the volume lock, never by the failing request itself.
func (v *FS) noteErr(err error) {
	if err == nil || !v.writable {
		return
	}
	if device.IsMediaError(err) {
		v.mediaErr.Store(true)
	} else if errors.Is(err, ErrCorrupt) {
		v.corrupt.Store(true)
	}
}

// recordTrouble writes the marks for what noteErr saw, once: the volume
// stays dirty through Close, and a media error also sets the hard-error
// marks. It is best effort (the boot sector or FAT[1] may be what failed)
// and runs with the volume lock held.
func (v *FS) recordTrouble() {
	media, corrupt := v.mediaErr.Load(), v.corrupt.Load()
	if !media && !corrupt {
		return
	}
	v.sticky = true
	if v.troubleMarked && (v.hardMarked || !media) {
		return
	}
	v.troubleMarked, v.hardMarked = true, media
	if v.setState(true, media) == nil {
		v.dirtyOnDisk = true
	}
}

// Sync writes everything out, updates the FAT32 FSInfo sector (and its
// backup) and marks the volume clean.
func (v *FS) Sync() error {
	if !v.writable {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.syncLocked()
}

func (v *FS) syncLocked() (err error) {
	v.recordTrouble()
	defer func() {
		if err != nil {
			v.noteErr(err)
			v.recordTrouble()
		}
	}()
	if !v.dirtyOnDisk {
		return nil
	}
	if err := v.commit(); err != nil {
		return pathErr("sync", "", err)
	}
	if err := v.writeFSInfo(); err != nil {
		return pathErr("sync", "", err)
	}
	if err := v.dev.Sync(); err != nil {
		return pathErr("sync", "", err)
	}
	if v.sticky || v.info.Dirty {
		return nil // stays dirty: it was dirty at mount, or a write failed
	}
	if err := v.setState(false, false); err != nil {
		return pathErr("sync", "", err)
	}
	v.dirtyOnDisk = false
	return nil
}

// writeFSInfo brings FSInfo's free count and next-free hint up to date.
func (v *FS) writeFSInfo() error {
	if v.g.fatType != fat32 || !v.fsinfoOK {
		return nil
	}
	fi := v.fsinfo
	switch {
	case v.alloc.built:
		fi.FreeCount, fi.NxtFree = uint32(v.alloc.free), v.alloc.next
	case v.freedTotal != v.freedInHint: // freed since FSInfo was last written
		if hint, ok := v.fsinfoFree(); ok {
			fi.FreeCount = uint32(hint + v.freedTotal - v.freedInHint)
		} else {
			fi.FreeCount = fsInfoUnknown
		}
	}
	secs := []int64{int64(v.bs.FSInfo)}
	if bk := int64(v.bs.BkBootSec); bk > 0 && bk+1 < v.g.reserved {
		secs = append(secs, bk+1)
	}
	for _, s := range secs {
		b, err := v.cache.Get(s)
		if err != nil {
			return err
		}
		if _, ok := decodeFSInfo(b.Data); ok {
			fi.encode(b.Data)
			v.cache.MarkDirty(b)
		}
		v.cache.Release(b)
	}
	v.fsinfo = fi
	v.freedInHint = v.freedTotal
	return v.flushBlocks(secs...)
}

// Close syncs a writable volume that was changed, then releases it. It
// does not close the device. Metadata that could not be written even now
// is dropped from memory (the volume stays marked dirty for a disk check),
// so that nothing stays held.
func (v *FS) Close() error {
	if v.writable {
		// Files removed while open and never closed: their clusters go
		// now, before the volume is marked clean.
		v.openMu.Lock()
		var sts []*fileState
		for st := range v.orphans {
			sts = append(sts, st)
		}
		v.openMu.Unlock()
		for _, st := range sts {
			v.freeOrphan(st, "")
		}
	}
	err := v.Sync()
	if err != nil && v.writable {
		v.mu.Lock()
		v.cache.Discard()
		v.mu.Unlock()
	}
	return err
}

// parentOf resolves the parent directory of name and returns it with the
// last path element.
func (v *FS) parentOf(name string) (*node, uint32, string, error) {
	dir, elem := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		dir = "."
	}
	p, _, err := v.resolve(dir)
	if err != nil {
		return nil, 0, "", err
	}
	if !p.isDir() {
		return nil, 0, "", ErrNotDir
	}
	return p, v.dirKey(p), elem, nil
}

// validNew checks a path about to be created.
func validNew(op, name string) error {
	if !fs.ValidPath(name) || name == "." {
		return &fs.PathError{Op: op, Path: "/" + name, Err: fmt.Errorf("%w: %q", ErrInvalidName, name)}
	}
	if err := checkName(path.Base(name)); err != nil {
		return pathErr(op, name, err)
	}
	if err := checkPathLen(name); err != nil {
		return pathErr(op, name, err)
	}
	return nil
}

func (v *FS) stamp(e *dirEntry, create bool) {
	t := v.now()
	d, tm, tenths := encodeTime(t, v.loc)
	e.WrtDate, e.WrtTime = d, tm
	e.LstAccDate = d
	if create {
		e.CrtDate, e.CrtTime, e.CrtTimeTenth = d, tm, tenths
	}
}

// OpenFile opens name with os.OpenFile's flags (O_RDONLY, O_WRONLY,
// O_RDWR, O_CREATE, O_EXCL, O_TRUNC, O_APPEND). A new file gets the
// read-only attribute when perm lacks 0200. Names are matched without
// regard to case, so O_CREATE of a case variant opens the existing file.
func (v *FS) OpenFile(name string, flag int, perm fs.FileMode) (f *File, err error) {
	const op = "open"
	write := flag&(os.O_WRONLY|os.O_RDWR) != 0
	if !write && flag&(os.O_CREATE|os.O_TRUNC|os.O_APPEND) == 0 {
		v.mu.RLock()
		defer v.mu.RUnlock()
		n, anc, err := v.resolveOp(op, name)
		if err != nil {
			return nil, err
		}
		if n.isDir() {
			return nil, pathErr(op, name, ErrIsDir)
		}
		return v.openFile(name, n, anc[len(anc)-1], flag), nil
	}
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	if err := v.begin(op, name); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil && f != nil { // end could not write the change
			f.Close()
			f = nil
		}
	}()
	defer v.end(&err, op, name)
	f, err = v.openLocked(name, flag, perm)
	if err != nil {
		return nil, pathErr(op, name, err)
	}
	return f, nil
}

func (v *FS) openLocked(name string, flag int, perm fs.FileMode) (*File, error) {
	parent, pkey, elem, err := v.parentOf(name)
	if err != nil {
		return nil, err
	}
	pd, err := v.dir(parent)
	if err != nil {
		return nil, err
	}
	n := pd.lookup(elem)
	write := flag&(os.O_WRONLY|os.O_RDWR) != 0
	if n == nil {
		if flag&os.O_CREATE == 0 {
			return nil, fs.ErrNotExist
		}
		if err := checkName(elem); err != nil {
			return nil, err
		}
		if err := checkPathLen(name); err != nil {
			return nil, err
		}
		e := dirEntry{Attr: attrArchive}
		if perm&0o200 == 0 {
			e.Attr |= attrReadOnly
		}
		v.stamp(&e, true)
		if n, err = v.addEntry(parent, elem, e); err != nil {
			return nil, err
		}
		return v.openFile(name, n, pkey, flag), nil
	}
	if flag&(os.O_CREATE|os.O_EXCL) == os.O_CREATE|os.O_EXCL {
		return nil, fs.ErrExist
	}
	if n.isDir() {
		return nil, ErrIsDir
	}
	if write && n.ent.Attr&attrReadOnly != 0 {
		return nil, fmt.Errorf("%w: the file has the read-only attribute", fs.ErrPermission)
	}
	f := v.openFile(name, n, pkey, flag)
	if write && flag&os.O_TRUNC != 0 && f.st.size > 0 {
		if err := v.truncate(f.st, 0); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

var errRemoved = fmt.Errorf("the file was removed: %w", fs.ErrNotExist)

// Write writes p at the file's offset (at its end with O_APPEND).
func (f *File) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, pathErr("write", f.name, fs.ErrClosed)
	}
	next, err := f.write(p, f.off, f.flag&os.O_APPEND != 0)
	if err != nil {
		return 0, err
	}
	f.off = next
	return len(p), nil
}

// WriteAt writes p at offset off. It is refused on an O_APPEND handle, as
// os.File does.
func (f *File) WriteAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	closed := f.closed
	f.mu.Unlock()
	if closed {
		return 0, pathErr("write", f.name, fs.ErrClosed)
	}
	if f.flag&os.O_APPEND != 0 {
		return 0, pathErr("write", f.name, errors.New("WriteAt on a file opened with O_APPEND"))
	}
	if off < 0 {
		return 0, pathErr("write", f.name, errors.New("negative offset"))
	}
	if _, err := f.write(p, off, false); err != nil {
		return 0, err
	}
	return len(p), nil
}

// write writes p at off (or at the end) and returns the offset after the
// write (on failure, the offset where it started: nothing is written).
func (f *File) write(p []byte, off int64, appendMode bool) (int64, error) {
	return f.writeFrom(off, int64(len(p)), appendMode, putBytes(f.v, p))
}

// putBytes is the source of a write of the bytes p.
func putBytes(v *FS, p []byte) putFunc {
	return func(rel, devOff, k int64, last bool) error {
		return v.writeData(p[rel:rel+k], devOff, last)
	}
}

// putFunc writes the bytes [rel, rel+k) of a write (rel counted from the
// write's start) to volume byte offset devOff, straight to the device.
// last says that the bytes end the file, so that the rest of their last
// sector may be zeroed rather than kept.
type putFunc func(rel, devOff, k int64, last bool) error

// writeFrom writes n bytes that put supplies at off (or at the end) and
// returns the offset after the write (on failure, the offset where it
// started).
func (f *File) writeFrom(off, n int64, appendMode bool, put putFunc) (next int64, err error) {
	if f.flag&(os.O_WRONLY|os.O_RDWR) == 0 {
		return off, pathErr("write", f.name, fmt.Errorf("file not open for writing: %w", fs.ErrPermission))
	}
	v := f.v
	if err := v.begin("write", f.name); err != nil {
		return off, err
	}
	defer v.end(&err, "write", f.name)
	if f.st.removed && !f.st.orphan {
		err = pathErr("write", f.name, errRemoved)
		return off, err
	}
	if appendMode {
		off = f.st.size
	}
	if n == 0 {
		return off, nil
	}
	if err = v.writeAt(f.st, off, n, put); err != nil {
		err = pathErr("write", f.name, err)
		return off, err
	}
	return off + n, nil
}

// Truncate changes the file's size: shrinking frees the clusters past the
// new end, growing fills with zeros.
func (f *File) Truncate(size int64) (err error) {
	f.mu.Lock()
	closed := f.closed
	f.mu.Unlock()
	if closed {
		return pathErr("truncate", f.name, fs.ErrClosed)
	}
	if f.flag&(os.O_WRONLY|os.O_RDWR) == 0 {
		return pathErr("truncate", f.name, fmt.Errorf("file not open for writing: %w", fs.ErrPermission))
	}
	if size < 0 {
		return pathErr("truncate", f.name, errors.New("negative size"))
	}
	v := f.v
	if err := v.begin("truncate", f.name); err != nil {
		return err
	}
	defer v.end(&err, "truncate", f.name)
	if f.st.removed && !f.st.orphan {
		err = pathErr("truncate", f.name, errRemoved)
		return err
	}
	if err = v.truncate(f.st, size); err != nil {
		err = pathErr("truncate", f.name, err)
	}
	return err
}

// Sync flushes the volume (every write is already on the medium when it
// returns; this also updates FSInfo and marks the volume clean).
func (f *File) Sync() error { return f.v.Sync() }

func (v *FS) truncate(st *fileState, size int64) error {
	if size > st.size {
		return v.writeAt(st, size, 0, nil)
	}
	if size == st.size {
		return nil
	}
	if err := v.writeThrough(); err != nil {
		return err
	}
	keep := v.g.clustersFor(size)
	first := st.n.ent.cluster(v.g.fatType)
	cls, err := v.chainClusters(first, v.g.clustersFor(st.size))
	if err != nil {
		return err
	}
	// The entry first, then the chain's new end, then the freed clusters.
	oldEnt := st.n.ent
	err = v.updateEntryOf(st, func(e *dirEntry) {
		e.FileSize = uint32(size)
		if keep == 0 {
			e.setCluster(0)
		}
		e.Attr |= attrArchive
		v.stamp(e, false)
		st.n.ent = *e
	})
	if err != nil {
		// Nothing was freed: the file keeps its size and entry, in memory
		// and in the cached block.
		if st.n.ent != oldEnt {
			rerr := v.modBlock(st.n.off, dirEntrySize, func(p []byte) { oldEnt.encode(p) })
			st.n.ent = oldEnt
			v.dirs.setEntry(st.parent, st.n.off, oldEnt, rerr)
		}
		return err
	}
	if !st.orphan {
		v.dirs.setEntry(st.parent, st.n.off, st.n.ent, nil)
	}
	st.size = size
	st.resetChain(v)
	if keep > 0 {
		if err := v.setFAT(cls[keep-1], v.g.eocMark()); err != nil {
			return err
		}
		if err := v.flushFAT(); err != nil {
			return err
		}
	}
	if err := v.freeClusters(cls[keep:]); err != nil {
		return err
	}
	return v.flushFAT()
}

// writeAt writes n bytes from put at off into the file, zero-filling from
// the old end to off; n == 0 with off > size just extends the file with
// zeros.
func (v *FS) writeAt(st *fileState, off, n int64, put putFunc) error {
	end := off + n
	if end > 0xFFFFFFFF {
		return ErrFileTooLarge
	}
	oldSize := st.size
	newSize := max(oldSize, end)
	have := v.g.clustersFor(oldSize)
	need := v.g.clustersFor(newSize)
	first := st.n.ent.cluster(v.g.fatType)
	ch := st.chain
	var last uint32
	var newCls []uint32
	if need > have {
		if ch != nil {
			n, err := ch.length()
			if err != nil {
				return err
			}
			if int64(n) != have {
				return corruptf(ch.last, "cluster chain ends at cluster %d after %d clusters, but the file has %d bytes", ch.last, n, oldSize)
			}
			last = ch.last
		}
		var err error
		if newCls, err = v.allocate(need-have, last); err != nil {
			return err
		}
		if ch == nil {
			first = newCls[0]
			ch = v.newChain(first, 0)
		}
		// The chain in memory runs on into the new clusters; the FAT does
		// not yet.
		if err := ch.appendClusters(newCls, uint32(need)); err != nil {
			for _, c := range newCls {
				v.alloc.set(c, false)
			}
			st.resetChain(v)
			return err
		}
	}
	undo := func(bad map[uint32]bool) {
		for _, c := range newCls {
			if !bad[c] {
				v.alloc.set(c, false)
			}
		}
		if len(newCls) > 0 {
			st.resetChain(v)
		}
	}
	done := new(sync.Once)
	done.Do(func() {}) // the new end is not in the FAT yet: do not check it
	ext := &fileState{size: newSize, chain: ch, endOnce: done}
	// Data first: zeros over the gap, then p.
	if off > oldSize {
		if err := v.writeZeros(ext, oldSize, off); err != nil {
			undo(nil)
			return err
		}
	}
	if n > 0 {
		var failOff, failN int64
		err := ext.runs(v, off, end, func(pos, devOff, k int64) error {
			// Past the file's new end the last sector is ours: zeros, not
			// a read of whatever was there.
			last := pos+k == end && end == newSize
			if err := put(pos-off, devOff, k, last); err != nil {
				failOff, failN = devOff, k
				return err
			}
			return nil
		})
		if re, ok := err.(*runErr); ok {
			err = re.err
		}
		if err != nil {
			undo(v.markBad(newCls, failOff, failN, err))
			return err
		}
	}
	// Then the FAT: the new clusters' chain, then the link to it.
	if len(newCls) > 0 {
		if err := v.linkNew(newCls); err != nil {
			v.rollbackGrowth(st, st.n.ent, 0, newCls)
			return err
		}
		if last != 0 {
			if err := v.linkFrom(last); err != nil {
				v.rollbackGrowth(st, st.n.ent, 0, newCls)
				return err
			}
			if err := v.setFAT(last, newCls[0]); err != nil {
				v.rollbackGrowth(st, st.n.ent, 0, newCls)
				return err
			}
			if err := v.flushFAT(); err != nil {
				v.rollbackGrowth(st, st.n.ent, last, newCls)
				return err
			}
		}
	}
	// Then the directory entry.
	oldEnt := st.n.ent
	err := v.updateEntryOf(st, func(e *dirEntry) {
		e.FileSize = uint32(newSize)
		e.setCluster(first)
		e.Attr |= attrArchive
		v.stamp(e, false)
		st.n.ent = *e
	})
	if err != nil {
		v.rollbackGrowth(st, oldEnt, last, newCls)
		return err
	}
	if !st.orphan {
		v.dirs.setEntry(st.parent, st.n.off, st.n.ent, nil)
	}
	st.size = newSize
	st.chain, st.endOnce, st.endErr = ch, new(sync.Once), nil
	return nil
}

// rollbackGrowth undoes a growth whose directory entry could not be
// written (R-FAT-3): the file keeps its old size and entry in memory, the
// cached copy of the entry is put back, and the new clusters go back to
// the free space (the link to them is cut first). All of it is best
// effort: what cannot be undone is lost clusters at worst, and the volume
// is already marked to stay dirty.
func (v *FS) rollbackGrowth(st *fileState, oldEnt dirEntry, last uint32, newCls []uint32) {
	if st.orphan {
		st.n.ent = oldEnt // its entry is gone from the medium: nothing to put back
	} else if st.n.ent != oldEnt {
		rerr := v.modBlock(st.n.off, dirEntrySize, func(p []byte) { oldEnt.encode(p) })
		st.n.ent = oldEnt
		v.dirs.setEntry(st.parent, st.n.off, oldEnt, rerr)
	}
	if len(newCls) > 0 {
		ok := true
		if last != 0 {
			ok = v.setFAT(last, v.g.eocMark()) == nil
		}
		if ok && v.freeClusters(newCls) == nil {
			v.flushFAT()
		}
	}
	st.resetChain(v)
}

// writeZeros writes zeros over the file's bytes [from, to).
func (v *FS) writeZeros(st *fileState, from, to int64) error {
	zero := make([]byte, min(to-from, 1<<20))
	err := st.runs(v, from, to, func(pos, devOff, n int64) error {
		for n > 0 {
			k := min(n, int64(len(zero)))
			if err := v.writeData(zero[:k], devOff, false); err != nil {
				return err
			}
			devOff, n = devOff+k, n-k
		}
		return nil
	})
	if re, ok := err.(*runErr); ok {
		return re.err
	}
	return err
}

// padPool holds writeData's buffers for small writes.
var padPool = sync.Pool{New: func() any { b := make([]byte, 64<<10+4096); return &b }}

// writeData writes src at volume byte offset off straight to the device:
// whole sectors in one request, partial sectors at either edge read,
// patched and written back. With zeroTail the bytes after src in its last
// sector are not the file's (they lie past its end): they are written as
// zeros instead of being read first. Cached copies of the sectors are
// dropped.
func (v *FS) writeData(src []byte, off int64, zeroTail bool) error {
	ss := int64(v.dev.SectorSize())
	v.cache.Invalidate(off, int64(len(src)))
	var bounce []byte
	edge := func(src []byte, off int64) error {
		if bounce == nil {
			bounce = make([]byte, ss)
		}
		at := off - off%ss
		if zeroTail && off == at {
			clear(bounce)
		} else if _, err := v.dev.ReadAt(bounce, at); err != nil {
			return err
		}
		copy(bounce[off-at:], src)
		_, err := v.dev.WriteAt(bounce, at)
		return err
	}
	if tail := int64(len(src)) % ss; zeroTail && off%ss == 0 && tail != 0 && len(src) <= 64<<10 {
		// A small write that ends the file: one request, padded with
		// zeros, rather than the whole sectors and then the last one.
		n := int64(len(src)) + ss - tail
		bp := padPool.Get().(*[]byte)
		defer padPool.Put(bp)
		buf := (*bp)[:n]
		copy(buf, src)
		clear(buf[len(src):])
		_, err := v.dev.WriteAt(buf, off)
		return err
	}
	if head := off % ss; head != 0 {
		n := min(int64(len(src)), ss-head)
		if err := edge(src[:n], off); err != nil {
			return err
		}
		src, off = src[n:], off+n
	}
	if mid := int64(len(src)) / ss * ss; mid > 0 {
		if _, err := v.dev.WriteAt(src[:mid], off); err != nil {
			return err
		}
		src, off = src[mid:], off+mid
	}
	if len(src) > 0 {
		return edge(src, off)
	}
	return nil
}

// markBad handles a failed data write into the new clusters cls: on media
// whose bad sectors stay bad (block devices, with Options.MarkBadClusters)
// each new cluster of the failed run [failOff, failOff+failN) is tried on
// its own, and those that still fail get the bad-cluster mark in the FAT
// so that they are never allocated again. It returns the clusters marked;
// the caller frees the others.
func (v *FS) markBad(cls []uint32, failOff, failN int64, err error) map[uint32]bool {
	if !v.markBadCls || !device.IsMediaError(err) || failN <= 0 {
		return nil
	}
	const maxProbes = 256 // a dying disk answers slowly: do not try forever
	var bad map[uint32]bool
	zero := make([]byte, v.g.clusterSize)
	probes := 0
	for _, c := range cls {
		co := v.g.clusterOffset(c)
		if co+int64(v.g.clusterSize) <= failOff || co >= failOff+failN {
			continue
		}
		if probes++; probes > maxProbes {
			break
		}
		if _, err := v.dev.WriteAt(zero, co); err == nil || !device.IsMediaError(err) {
			continue
		}
		if v.setFAT(c, v.g.badMark()) != nil {
			continue
		}
		if bad == nil {
			bad = make(map[uint32]bool)
		}
		bad[c] = true
	}
	if bad != nil {
		v.flushFAT()
	}
	return bad
}

// appendClusters adds clusters known to follow the chain's end (the chain
// is walked to its limit first) and raises its limit.
func (c *chain) appendClusters(cls []uint32, limit uint32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for !c.done {
		if err := c.extend(c.walked); err != nil {
			if errors.Is(err, errChainEnd) {
				break
			}
			return err
		}
	}
	for _, cl := range cls {
		if err := c.add(cl, c.last); err != nil {
			return err
		}
	}
	c.limit = limit
	c.done = true
	return nil
}

// Mkdir makes a directory: its first cluster (zeroed, with "." and "..")
// on the medium, then the FAT, then the entry in the parent.
func (v *FS) Mkdir(name string, perm fs.FileMode) error {
	if err := validNew("mkdir", name); err != nil {
		return err
	}
	return v.change("mkdir", name, func() error { return v.mkdir(name, perm) })
}

func (v *FS) mkdir(name string, perm fs.FileMode) error {
	parent, pkey, elem, err := v.parentOf(name)
	if err != nil {
		return err
	}
	pd, err := v.dir(parent)
	if err != nil {
		return err
	}
	if pd.lookup(elem) != nil {
		return fs.ErrExist
	}
	cls, err := v.allocate(1, 0)
	if err != nil {
		return err
	}
	c := cls[0]
	e := dirEntry{Attr: attrDirectory}
	if perm&0o200 == 0 {
		e.Attr |= attrReadOnly
	}
	v.stamp(&e, true)
	e.setCluster(c)
	head := make([]byte, 2*dirEntrySize)
	dot := e
	dot.Attr = attrDirectory
	copy(dot.Name[:], ".          ")
	dot.encode(head)
	dotdot := dot
	copy(dotdot.Name[:], "..         ")
	parentCluster := pkey
	if parent.root {
		parentCluster = 0
	}
	dotdot.setCluster(parentCluster)
	dotdot.encode(head[dirEntrySize:])
	if err := v.zeroCluster(c, head); err != nil {
		if !v.markBad(cls, v.g.clusterOffset(c), int64(v.g.clusterSize), err)[c] {
			v.alloc.set(c, false)
		}
		return err
	}
	if err := v.linkNew(cls); err != nil {
		return err
	}
	v.dirs.forget(c)
	if _, err := v.addEntry(parent, elem, e); err != nil {
		// Give the cluster back: nothing points to it.
		if ferr := v.freeClusters(cls); ferr == nil {
			ferr = v.flushFAT()
		}
		return err
	}
	return nil
}

// Remove removes a file or an empty directory: the entry first, then its
// clusters.
func (v *FS) Remove(name string) error {
	return v.change("remove", name, func() error { return v.remove(name, false) })
}

// RemoveAll removes name and, for a directory, everything in it: the
// directory's entry goes first, then every chain of the tree is freed. A
// missing name is not an error (os.RemoveAll); "." empties the root.
func (v *FS) RemoveAll(name string) error {
	return v.change("removeall", name, func() error {
		if name != "." {
			if err := v.remove(name, true); !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			return nil
		}
		pd, err := v.dir(v.root)
		if err != nil {
			return err
		}
		for _, c := range pd.list {
			if err := v.remove(c.name, true); err != nil {
				return pathErr("removeall", c.name, err)
			}
		}
		return nil
	})
}

// lookupEntry finds the entry name names, with its parent directory and
// that directory's key.
func (v *FS) lookupEntry(name string) (n, parent *node, pkey uint32, err error) {
	parent, pkey, elem, err := v.parentOf(name)
	if err != nil {
		return nil, nil, 0, err
	}
	pd, err := v.dir(parent)
	if err != nil {
		return nil, nil, 0, err
	}
	if n = pd.lookup(elem); n == nil {
		return nil, nil, 0, fs.ErrNotExist
	}
	return n, parent, pkey, nil
}

// fileClusters lists the clusters of file entry n as far as its size
// needs them.
func (v *FS) fileClusters(n *node) ([]uint32, error) {
	return v.chainClusters(n.ent.cluster(v.g.fatType), v.g.clustersFor(int64(n.ent.FileSize)))
}

func (v *FS) remove(name string, tree bool) error {
	if name == "." {
		return fmt.Errorf("%w: cannot remove the root directory", fs.ErrInvalid)
	}
	if err := v.writeThrough(); err != nil {
		return err
	}
	n, parent, pkey, err := v.lookupEntry(name)
	if err != nil {
		return err
	}
	var chains [][]uint32
	var dirKeys []uint32
	var offs []int64
	if n.isDir() {
		key := v.dirKey(n)
		if key == pkey || key == v.dirKey(v.root) {
			return corruptf(key, "directory entry refers to its parent or the root")
		}
		cd, err := v.dir(n)
		if err != nil {
			return err
		}
		if len(cd.list) > 0 && !tree {
			return ErrNotEmpty
		}
		if tree {
			seen := map[uint32]bool{pkey: true, v.dirKey(v.root): true}
			if err := v.collectTree(n, seen, &chains, &dirKeys, &offs); err != nil {
				return err
			}
		} else {
			cls, err := v.chainClusters(key, -1)
			if err != nil {
				return err
			}
			chains = append(chains, cls)
			dirKeys = append(dirKeys, key)
		}
	} else {
		cls, err := v.fileClusters(n)
		if err != nil {
			return err
		}
		chains = append(chains, cls)
	}
	dl, err := v.dirLayout(parent)
	if err != nil {
		return err
	}
	if err := v.deleteSlots(dl, n); err != nil {
		return err
	}
	if !n.isDir() && v.keepOpen(n.off) {
		chains = nil // the last Close frees them
	}
	offs = append(offs, n.off)
	v.forgetOpen(offs)
	for _, k := range dirKeys {
		v.dirs.forget(k)
	}
	for _, cls := range chains {
		if err := v.freeClusters(cls); err != nil {
			return err
		}
	}
	return v.flushFAT()
}

// collectTree lists the chains of directory d and of everything under it
// (directories are checked against their ancestors, as readers do).
func (v *FS) collectTree(d *node, seen map[uint32]bool, chains *[][]uint32, dirKeys *[]uint32, offs *[]int64) error {
	key := v.dirKey(d)
	if seen[key] {
		return corruptf(key, "directory at cluster %d appears twice in the tree", key)
	}
	seen[key] = true
	cd, err := v.dir(d)
	if err != nil {
		return err
	}
	for _, c := range cd.list {
		*offs = append(*offs, c.off)
		if c.isDir() {
			if err := v.collectTree(c, seen, chains, dirKeys, offs); err != nil {
				return err
			}
			continue
		}
		cls, err := v.fileClusters(c)
		if err != nil {
			return err
		}
		*chains = append(*chains, cls)
	}
	cls, err := v.chainClusters(key, -1)
	if err != nil {
		return err
	}
	*chains = append(*chains, cls)
	*dirKeys = append(*dirKeys, key)
	return nil
}

// forgetOpen marks the open files at these entry offsets removed.
func (v *FS) forgetOpen(offs []int64) {
	v.openMu.Lock()
	defer v.openMu.Unlock()
	for _, o := range offs {
		if st := v.open[o]; st != nil {
			st.removed = true
			delete(v.open, o)
		}
	}
}

// keepOpen is forgetOpen for one removed file, whose clusters then stay
// allocated while it is open, as POSIX and Linux's vfat keep an unlinked
// file's data until its last close: it reports whether a handle is open
// (the file is then an orphan: read, written and truncated through its
// handles with its entry kept in memory only, freed by the last Close). A
// crash in between leaves its clusters lost, as fsck says.
func (v *FS) keepOpen(off int64) bool {
	v.openMu.Lock()
	defer v.openMu.Unlock()
	st := v.open[off]
	if st == nil {
		return false
	}
	st.removed = true
	delete(v.open, off)
	if st.refs > 0 {
		st.orphan = true
		v.orphans[st] = struct{}{}
		return true
	}
	return false
}

// freeOrphan gives back the clusters of a removed file whose last handle
// closed.
func (v *FS) freeOrphan(st *fileState, name string) (err error) {
	if err := v.begin("close", name); err != nil {
		return err
	}
	defer v.end(&err, "close", name)
	if err := v.writeThrough(); err != nil {
		return err
	}
	return v.freeOrphanLocked(st)
}

func (v *FS) freeOrphanLocked(st *fileState) error {
	v.openMu.Lock()
	was := st.orphan
	st.orphan = false
	delete(v.orphans, st)
	v.openMu.Unlock()
	if !was {
		return nil // freed already (the FS's Close and a last Close met)
	}
	first := st.n.ent.cluster(v.g.fatType)
	if first == 0 {
		return nil
	}
	cls, err := v.chainClusters(first, v.g.clustersFor(st.size))
	if err != nil {
		return err
	}
	if err := v.freeClusters(cls); err != nil {
		return err
	}
	return v.flushFAT()
}

// Rename renames or moves a file or directory, as rename(2) does: an
// existing file at newname is replaced, an existing empty directory is
// replaced by a directory, and a case-only change (README.TXT →
// readme.txt) renames in place.
func (v *FS) Rename(oldname, newname string) error {
	const op = "rename"
	if oldname == "." {
		return &fs.PathError{Op: op, Path: "/", Err: fs.ErrInvalid}
	}
	if err := validNew(op, newname); err != nil {
		return err
	}
	return v.change(op, oldname, func() error {
		if err := v.rename(oldname, newname); err != nil {
			return &fs.PathError{Op: op, Path: "/" + oldname + " -> /" + newname, Err: err}
		}
		return nil
	})
}

func (v *FS) rename(oldname, newname string) error {
	if err := v.writeThrough(); err != nil {
		return err
	}
	n, op, opkey, err := v.lookupEntry(oldname)
	if err != nil {
		return err
	}
	np, npkey, nelem, err := v.parentOf(newname)
	if err != nil {
		return err
	}
	isDir := n.isDir()
	if isDir {
		// The new parent must not be the directory or inside it.
		_, anc, err := v.resolve(path.Dir(newname))
		if err != nil {
			return err
		}
		key := v.dirKey(n)
		for _, a := range append(anc, npkey) {
			if a == key {
				return fmt.Errorf("%w: cannot move a directory into itself", fs.ErrInvalid)
			}
		}
	}
	npd, err := v.dir(np)
	if err != nil {
		return err
	}
	target := npd.lookup(nelem)
	if target != nil && target.off == n.off {
		if n.name == nelem {
			return nil // the same name
		}
		target = nil // a case-only (or short-name) rename of the same entry
	}
	var targetChain []uint32
	if target != nil {
		switch {
		case target.isDir() && !isDir:
			return ErrIsDir
		case !target.isDir() && isDir:
			return ErrNotDir
		case target.isDir():
			td, err := v.dir(target)
			if err != nil {
				return err
			}
			if len(td.list) > 0 {
				return ErrNotEmpty
			}
			if targetChain, err = v.chainClusters(v.dirKey(target), -1); err != nil {
				return err
			}
		default:
			if targetChain, err = v.fileClusters(target); err != nil {
				return err
			}
		}
	}
	// Room for the new entry (at most a long name's slots and the short
	// entry) before anything is removed.
	if err := v.reserveSlots(np, slotsFor(nelem, shortPlan{needLFN: true})); err != nil {
		return err
	}
	// 1. The old entry goes.
	odl, err := v.dirLayout(op)
	if err != nil {
		return err
	}
	if err := v.deleteSlots(odl, n); err != nil {
		return err
	}
	// 2. The replaced entry goes.
	if target != nil {
		tdl, err := v.dirLayout(np)
		if err != nil {
			return err
		}
		if err := v.deleteSlots(tdl, target); err != nil {
			return err
		}
		if !target.isDir() && v.keepOpen(target.off) {
			targetChain = nil // the last Close frees them
		}
		v.forgetOpen([]int64{target.off})
	}
	// 3. A moved directory's "..".
	if isDir && opkey != npkey {
		parentCluster := npkey
		if np.root {
			parentCluster = 0
		}
		key := v.dirKey(n)
		dl, err := v.dirLayout(n)
		if err != nil {
			return err
		}
		if dl.slots > 1 {
			blk, err := v.setSlot(dl, 1, func(p []byte) {
				if string(p[:11]) == "..         " {
					e := decodeDirEntry(p)
					e.setCluster(parentCluster)
					e.encode(p)
				}
			})
			if err != nil {
				return err
			}
			if err := v.flushBlocks(blk); err != nil {
				return err
			}
		}
		v.dirs.forget(key)
	}
	// 4. The new entry.
	e := n.ent
	if !isDir {
		e.Attr |= attrArchive
	}
	nn, err := v.addEntry(np, nelem, e)
	if err != nil {
		return err
	}
	// Open handles follow the entry.
	v.openMu.Lock()
	if st := v.open[n.off]; st != nil {
		delete(v.open, n.off)
		st.n.off, st.n.lfnOff, st.n.name, st.n.short = nn.off, nn.lfnOff, nn.name, nn.short
		st.n.ent.Name, st.n.ent.NTRes = nn.ent.Name, nn.ent.NTRes
		st.parent = npkey
		v.open[nn.off] = st
	}
	v.openMu.Unlock()
	// 5. The replaced file's clusters.
	if target != nil {
		if target.isDir() {
			v.dirs.forget(v.dirKey(target))
		}
		if err := v.freeClusters(targetChain); err != nil {
			return err
		}
		return v.flushFAT()
	}
	return nil
}

// Chtimes sets the modification time and the access date of name.
func (v *FS) Chtimes(name string, atime, mtime time.Time) (err error) {
	const op = "chtimes"
	return v.changeEntry(op, name, func(e *dirEntry) {
		if !mtime.IsZero() {
			e.WrtDate, e.WrtTime, _ = encodeTime(mtime, v.loc)
		}
		if !atime.IsZero() {
			e.LstAccDate, _, _ = encodeTime(atime, v.loc)
		}
	})
}

// SetAttrs sets the read-only, hidden, system and archive attributes of
// name (the other bits of attrs are ignored).
func (v *FS) SetAttrs(name string, attrs uint8) error {
	const keep = attrDirectory | attrVolumeID
	const set = attrReadOnly | attrHidden | attrSystem | attrArchive
	return v.changeEntry("setattrs", name, func(e *dirEntry) {
		e.Attr = e.Attr&keep | attrs&set
	})
}

func (v *FS) changeEntry(op, name string, f func(e *dirEntry)) error {
	return v.change(op, name, func() error {
		if name == "." {
			return nil // the root has no entry
		}
		n, _, pkey, err := v.lookupEntry(name)
		if err != nil {
			return err
		}
		var ent dirEntry
		err = v.updateEntry(n.off, func(e *dirEntry) {
			f(e)
			ent = *e
			v.openMu.Lock()
			if st := v.open[n.off]; st != nil {
				st.n.ent = *e
			}
			v.openMu.Unlock()
		})
		v.dirs.setEntry(pkey, n.off, ent, err)
		return err
	})
}

// SetLabel sets the volume label in the boot sector (and its FAT32 backup)
// and in the root directory's volume-label entry, as Windows does. The
// label is upper-cased and must be at most 11 OEM characters without
// characters short names may not hold; "" removes the root entry and
// writes "NO NAME" in the boot sector.
func (v *FS) SetLabel(label string) (err error) {
	const op = "label"
	var raw [11]byte
	copy(raw[:], "NO NAME    ")
	if label != "" {
		if raw, err = encodeLabel(v.cp, label); err != nil {
			return pathErr(op, "", err)
		}
	}
	if err := v.begin(op, ""); err != nil {
		return err
	}
	defer v.end(&err, op, "")
	if err = v.setLabel(label, raw); err != nil {
		err = pathErr(op, "", err)
	}
	return err
}

func (v *FS) setLabel(label string, raw [11]byte) error {
	if err := v.writeThrough(); err != nil {
		return err
	}
	// The root entry first.
	dl, err := v.dirLayout(v.root)
	if err != nil {
		return err
	}
	found := -1
	var p dirParser
	p.cp = v.cp
	i := 0
	err = v.scanDir(v.root, func(r []byte, off int64) bool {
		defer func() { i++ }()
		if r[0] == nameEnd {
			return true
		}
		if r[0] != nameFree {
			e := decodeDirEntry(r)
			if !e.isLFN() && e.isLabel() {
				found = i
				return true
			}
		}
		return false
	})
	if err != nil {
		return err
	}
	switch {
	case found >= 0 && label == "":
		blk, err := v.setSlot(dl, found, func(p []byte) { p[0] = nameFree })
		if err != nil {
			return err
		}
		if err := v.flushBlocks(blk); err != nil {
			return err
		}
	case found >= 0:
		blk, err := v.setSlot(dl, found, func(p []byte) {
			e := decodeDirEntry(p)
			e.Name = raw
			v.stamp(&e, false)
			e.encode(p)
		})
		if err != nil {
			return err
		}
		if err := v.flushBlocks(blk); err != nil {
			return err
		}
	case label != "":
		e := dirEntry{Name: raw, Attr: attrVolumeID}
		v.stamp(&e, false)
		e.LstAccDate, e.CrtDate = 0, 0
		rawE := make([]byte, dirEntrySize)
		e.encode(rawE)
		start, pastEnd, err := v.findFree(dl, 1)
		for err == nil && start < 0 {
			if err = v.growDir(dl); err == nil {
				start, pastEnd, err = v.findFree(dl, 1)
			}
		}
		if err != nil {
			return err
		}
		if err := v.writeSlots(dl, start, [][]byte{rawE}, pastEnd); err != nil {
			return err
		}
	}
	v.dirs.forget(dl.key)
	v.info.Label = label
	if label != "" {
		v.info.Label = decodeLabel(v.cp, raw)
	}
	// Then the boot sector and its backup.
	if v.bs.BootSig != extBootSig {
		return nil
	}
	v.bs.VolLab = raw
	x := int64(v.bs.extOffset() + 7)
	secs := []int64{0}
	if v.g.fatType == fat32 && v.bs.BkBootSec > 0 && int64(v.bs.BkBootSec) < v.g.reserved {
		secs = append(secs, int64(v.bs.BkBootSec))
	}
	for _, s := range secs {
		if err := v.modBytes(v.g.sectorOffset(s)+x, raw[:], nil); err != nil {
			return err
		}
	}
	v.info.BootLabel = ""
	if label != "" {
		v.info.BootLabel = decodeLabel(v.cp, raw)
	}
	return v.flushBlocks(secs...)
}

var _ io.Writer = (*File)(nil)
