package fat

import (
	"errors"
	"io"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/mediafs/mediafs/device"
)

// Sys is what FileInfo.Sys returns for every file and directory.
type Sys struct {
	Alloc        int64  // bytes allocated: the size rounded up to whole clusters (directories: their chain)
	Attrs        uint8  // FAT attribute byte
	AttrString   string // the attributes as letters of R H S A D V, in that order
	FirstCluster uint32
	Created      time.Time // with the 10-ms field
	Accessed     time.Time // a date only
	ShortName    string    // the 8.3 name as stored, "NAME.EXT"
	Ino          uint64    // from the entry's place on the volume; 1 for the root
}

// attrString spells an attribute byte as letters.
func attrString(a uint8) string {
	var sb strings.Builder
	for _, x := range []struct {
		bit uint8
		c   byte
	}{{attrReadOnly, 'R'}, {attrHidden, 'H'}, {attrSystem, 'S'}, {attrArchive, 'A'}, {attrDirectory, 'D'}, {attrVolumeID, 'V'}} {
		if a&x.bit != 0 {
			sb.WriteByte(x.c)
		}
	}
	return sb.String()
}

// fileInfo is the fs.FileInfo of a node.
type fileInfo struct {
	name  string
	size  int64
	mode  fs.FileMode
	mtime time.Time
	sys   *Sys
}

func (fi *fileInfo) Name() string       { return fi.name }
func (fi *fileInfo) Size() int64        { return fi.size }
func (fi *fileInfo) Mode() fs.FileMode  { return fi.mode }
func (fi *fileInfo) ModTime() time.Time { return fi.mtime }
func (fi *fileInfo) IsDir() bool        { return fi.mode.IsDir() }
func (fi *fileInfo) Sys() any           { return fi.sys }

// stat builds the FileInfo of n.
func (v *FS) stat(n *node) *fileInfo {
	e := &n.ent
	fi := &fileInfo{name: n.name, mode: 0o444}
	sys := &Sys{
		Attrs:        e.Attr,
		AttrString:   attrString(e.Attr),
		FirstCluster: e.cluster(v.g.fatType),
		ShortName:    n.short,
		Ino:          uint64(n.off / dirEntrySize),
	}
	fi.sys = sys
	if n.root {
		fi.name, fi.mode = ".", fs.ModeDir|0o555
		sys.Ino = 1
		if v.g.fatType == fat32 {
			sys.Alloc = v.chainBytes(v.g.rootCluster)
		} else {
			sys.Alloc = v.g.rootBytes()
		}
		return fi
	}
	fi.mtime = decodeTime(e.WrtDate, e.WrtTime, 0, v.loc)
	sys.Created = decodeTime(e.CrtDate, e.CrtTime, e.CrtTimeTenth, v.loc)
	sys.Accessed = decodeTime(e.LstAccDate, 0, 0, v.loc)
	if n.isDir() {
		fi.mode = fs.ModeDir | 0o555
		sys.Alloc = v.chainBytes(v.dirKey(n))
		return fi
	}
	fi.size = int64(e.FileSize)
	sys.Alloc = v.g.clustersFor(fi.size) * int64(v.g.clusterSize)
	return fi
}

// chainBytes is the size of a directory's cluster chain, as far as it can
// be walked.
func (v *FS) chainBytes(first uint32) int64 {
	perCluster := int64(v.g.clusterSize / dirEntrySize)
	n, _ := v.newChain(first, (maxDirEntries+perCluster-1)/perCluster).length()
	return int64(n) * int64(v.g.clusterSize)
}

// dirEntryInfo is the fs.DirEntry of a node.
type dirEntryInfo struct {
	v *FS
	n *node
}

func (d dirEntryInfo) Name() string { return d.n.name }
func (d dirEntryInfo) IsDir() bool  { return d.n.isDir() }
func (d dirEntryInfo) Type() fs.FileMode {
	if d.n.isDir() {
		return fs.ModeDir
	}
	return 0
}
func (d dirEntryInfo) Info() (fs.FileInfo, error) {
	d.v.mu.RLock()
	defer d.v.mu.RUnlock()
	return d.v.stat(d.n), nil
}
func (d dirEntryInfo) String() string { return fs.FormatDirEntry(d) }

// handle is the open/closed state shared by File and Dir.
type handle struct {
	mu     sync.Mutex
	closed bool
}

// close marks the handle closed; closing twice is an error.
func (h *handle) close(name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return pathErr("close", name, fs.ErrClosed)
	}
	h.closed = true
	return nil
}

// File is an open file: fs.File, io.ReaderAt and io.Seeker, and on a
// writable volume io.Writer, io.WriterAt and Truncate. It is safe for
// concurrent use.
type File struct {
	v    *FS
	name string
	st   *fileState
	flag int // os.OpenFile flags; O_RDONLY for fs.FS opens

	handle // mu also guards off
	off    int64
}

// fileState is what every handle of one file shares: the directory entry
// as last written and the cluster chain. It is guarded by the volume lock
// (read under RLock, changed under Lock).
type fileState struct {
	n       node   // the entry; off and lfnOff follow renames
	parent  uint32 // directory key of the parent
	size    int64
	chain   *chain // nil when the file is empty
	endOnce *sync.Once
	endErr  error
	refs    int // handles open (openMu)
	removed bool
	// orphan: removed while open; its clusters stay allocated, and
	// readable through its handles, until the last Close (set and cleared
	// under both the volume lock and openMu).
	orphan bool
}

var (
	_ fs.File        = (*File)(nil)
	_ io.ReaderAt    = (*File)(nil)
	_ io.Seeker      = (*File)(nil)
	_ io.Writer      = (*File)(nil)
	_ io.WriterAt    = (*File)(nil)
	_ fs.ReadDirFile = (*Dir)(nil)
)

// resetChain rebuilds the chain after the allocation changed.
func (st *fileState) resetChain(v *FS) {
	st.chain = nil
	if c := st.n.ent.cluster(v.g.fatType); c != 0 && st.size > 0 {
		st.chain = v.newChain(c, v.g.clustersFor(st.size))
	}
	st.endOnce, st.endErr = new(sync.Once), nil
}

// openFile returns a handle on n, whose parent directory has key parent.
// Handles of one file share their state.
func (v *FS) openFile(name string, n *node, parent uint32, flag int) *File {
	v.openMu.Lock()
	defer v.openMu.Unlock()
	st := v.open[n.off]
	if st == nil {
		st = &fileState{n: *n, parent: parent, size: int64(n.ent.FileSize)}
		st.resetChain(v)
		v.open[n.off] = st
	}
	st.refs++
	return &File{v: v, name: name, st: st, flag: flag}
}

func (f *File) Stat() (fs.FileInfo, error) {
	f.v.mu.RLock()
	defer f.v.mu.RUnlock()
	return f.v.stat(&f.st.n), nil
}

// Close closes the handle. Every change was already written when the
// write returned; Close does not flush the volume (FS.Sync and FS.Close
// do).
func (f *File) Close() error {
	if err := f.close(f.name); err != nil {
		return err
	}
	f.v.openMu.Lock()
	f.st.refs--
	if f.st.refs == 0 && !f.st.removed && f.v.open[f.st.n.off] == f.st {
		delete(f.v.open, f.st.n.off)
	}
	last := f.st.refs == 0 && f.st.orphan
	f.v.openMu.Unlock()
	if last {
		// The last handle of a removed file: its clusters go now.
		return f.v.freeOrphan(f.st, f.name)
	}
	return nil
}

func (f *File) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, pathErr("read", f.name, fs.ErrClosed)
	}
	n, err := f.readAt(p, f.off)
	f.off += int64(n)
	return n, err
}

func (f *File) ReadAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	closed := f.closed
	f.mu.Unlock()
	if closed {
		return 0, pathErr("read", f.name, fs.ErrClosed)
	}
	if off < 0 {
		return 0, pathErr("read", f.name, errors.New("negative offset"))
	}
	n, err := f.readAt(p, off)
	if err == nil && n < len(p) {
		err = io.EOF
	}
	return n, err
}

func (f *File) Seek(offset int64, whence int) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, pathErr("seek", f.name, fs.ErrClosed)
	}
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += f.off
	case io.SeekEnd:
		f.v.mu.RLock()
		offset += f.st.size
		f.v.mu.RUnlock()
	default:
		return 0, pathErr("seek", f.name, errors.New("invalid whence"))
	}
	if offset < 0 {
		return 0, pathErr("seek", f.name, errors.New("negative position"))
	}
	f.off = offset
	return offset, nil
}

// readAt reads from the file's clusters: each run of contiguous clusters
// in one device request straight into p. It returns io.EOF only when off
// is at or past the end.
func (f *File) readAt(p []byte, off int64) (int, error) {
	f.v.mu.RLock()
	defer f.v.mu.RUnlock()
	if f.st.removed && !f.st.orphan {
		return 0, pathErr("read", f.name, errRemoved)
	}
	if off >= f.st.size {
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), f.st.size)
	err := f.runs(off, end, func(pos, devOff, n int64) error {
		return f.v.readData(p[pos-off:pos-off+n], devOff)
	})
	if re, ok := err.(*runErr); ok {
		f.v.noteErr(re.err)
		return int(re.pos - off), pathErr("read", f.name, re.err)
	}
	return int(end - off), nil
}

// runErr carries the file position where a run failed.
type runErr struct {
	pos int64
	err error
}

func (e *runErr) Error() string { return e.err.Error() }
func (e *runErr) Unwrap() error { return e.err }

// runs walks the file's bytes [off, end) as runs of contiguous clusters,
// calling fn with each run's file position, byte offset on the volume and
// length, and checking the chain as it goes: a chain that ends early, or
// whose end is damaged, is corruption naming the cluster.
// Its error, if any, is a *runErr holding the file position reached.
func (f *File) runs(off, end int64, fn func(pos, devOff, n int64) error) error {
	return f.st.runs(f.v, off, end, fn)
}

func (st *fileState) runs(v *FS, off, end int64, fn func(pos, devOff, n int64) error) error {
	g := v.g
	shift := g.clusterShift()
	lastIdx := uint32((st.size - 1) >> shift)
	pos := off
	for pos < end {
		idx := uint32(pos >> shift)
		cl, cont, err := st.chain.locate(idx, uint32((end-1)>>shift)-idx+1)
		if errors.Is(err, errChainEnd) {
			err = corruptf(st.chain.last, "cluster chain ends at cluster %d after %d bytes, but the file has %d", st.chain.last, int64(idx)<<shift, st.size)
		}
		if err == nil && idx+cont > lastIdx {
			st.endOnce.Do(func() { st.endErr = st.chain.verifyEnd(lastIdx) })
			if err = st.endErr; err != nil && idx < lastIdx {
				// A damaged end fails from the last cluster on: the
				// clusters before it are served first.
				cont, err = lastIdx-idx, nil
			}
		}
		if err != nil {
			return &runErr{pos, err}
		}
		segEnd := min(end, int64(idx+cont)<<shift)
		devOff := g.clusterOffset(cl) + pos&int64(g.clusterSize-1)
		if err := fn(pos, devOff, segEnd-pos); err != nil {
			return &runErr{pos, err}
		}
		pos = segEnd
	}
	return nil
}

// MediumRanges maps the file's bytes [off, off+n) (clipped to its size) to
// byte ranges of the volume's device, in file order, checking the cluster
// chain as a read would. Callers may copy those ranges from the device's
// host file in the kernel (see device.HostFile).
func (f *File) MediumRanges(off, n int64) ([]device.Range, error) {
	f.v.mu.RLock()
	defer f.v.mu.RUnlock()
	end := min(off+n, f.st.size)
	var out []device.Range
	err := f.runs(off, end, func(pos, devOff, n int64) error {
		out = device.AppendRange(out, devOff, n)
		return nil
	})
	if re, ok := err.(*runErr); ok {
		return nil, pathErr("read", f.name, re.err)
	}
	return out, nil
}

// Device is the device the volume is read from.
func (v *FS) Device() device.Device {
	if w, ok := v.dev.(*watched); ok {
		return w.Device
	}
	return v.dev
}

// readData reads len(dst) bytes at byte offset off of the volume straight
// from the device: the whole sectors in one request into dst, partial
// sectors at either edge through a one-sector bounce buffer.
func (v *FS) readData(dst []byte, off int64) error {
	ss := int64(v.dev.SectorSize())
	var bounce []byte
	edge := func(dst []byte, off int64) error {
		if bounce == nil {
			bounce = make([]byte, ss)
		}
		at := off - off%ss
		if _, err := v.dev.ReadAt(bounce, at); err != nil {
			return err
		}
		copy(dst, bounce[off-at:])
		return nil
	}
	if head := off % ss; head != 0 {
		n := min(int64(len(dst)), ss-head)
		if err := edge(dst[:n], off); err != nil {
			return err
		}
		dst, off = dst[n:], off+n
	}
	if mid := int64(len(dst)) / ss * ss; mid > 0 {
		if _, err := v.dev.ReadAt(dst[:mid], off); err != nil {
			return err
		}
		dst, off = dst[mid:], off+mid
	}
	if len(dst) > 0 {
		return edge(dst, off)
	}
	return nil
}

// Dir is an open directory.
type Dir struct {
	v    *FS
	name string
	n    *node

	handle  // mu also guards the listing
	list    []fs.DirEntry
	loaded  bool
	readErr error
}

func (d *Dir) Stat() (fs.FileInfo, error) {
	d.v.mu.RLock()
	defer d.v.mu.RUnlock()
	return d.v.stat(d.n), nil
}

func (d *Dir) Read([]byte) (int, error) {
	return 0, pathErr("read", d.name, errors.New("is a directory"))
}

func (d *Dir) Close() error { return d.close(d.name) }

// ReadDir returns the next count entries in directory order (all the rest
// when count <= 0), as fs.ReadDirFile specifies.
func (d *Dir) ReadDir(count int) ([]fs.DirEntry, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, pathErr("readdir", d.name, fs.ErrClosed)
	}
	if !d.loaded {
		d.v.mu.RLock()
		d.list, d.readErr = d.v.dirEntries(d.n)
		d.v.mu.RUnlock()
		d.loaded = true
	}
	// A damaged directory's readable entries come first, then the damage
	// as the error (once).
	takeErr := func() error {
		err := d.readErr
		d.readErr = nil
		if err != nil {
			return pathErr("readdir", d.name, err)
		}
		return nil
	}
	if count <= 0 {
		out := d.list
		d.list = nil
		return out, takeErr()
	}
	if len(d.list) == 0 {
		if err := takeErr(); err != nil {
			return nil, err
		}
		return nil, io.EOF
	}
	count = min(count, len(d.list))
	out := d.list[:count:count]
	d.list = d.list[count:]
	return out, nil
}
