package fuse

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"

	"github.com/mediafs/mediafs"
	"github.com/mediafs/mediafs/device"
)

// mediumRanger is implemented by the files of both drivers: it maps a
// range of a file to byte ranges of the volume's device.
type mediumRanger interface {
	MediumRanges(off, n int64) ([]device.Range, error)
}

// fileHandle is an open regular file: the driver's open file, kept for the
// life of the handle, so that reads and writes never resolve a path.
type fileHandle struct {
	n    *node
	file fs.File
	ra   io.ReaderAt
	wf   mediafs.File // nil on a read-only mount
	mr   mediumRanger // read-only mounts of plain images: splice from the image
}

var (
	_ gofs.FileReader    = (*fileHandle)(nil)
	_ gofs.FileWriter    = (*fileHandle)(nil)
	_ gofs.FileReleaser  = (*fileHandle)(nil)
	_ gofs.FileAllocater = (*fileHandle)(nil)
)

func (m *mount) newHandle(n *node, f fs.File, wf mediafs.File) (*fileHandle, syscall.Errno) {
	ra, ok := f.(io.ReaderAt)
	if !ok {
		return nil, syscall.EIO
	}
	h := &fileHandle{n: n, file: f, ra: ra, wf: wf}
	if m.host != nil && wf == nil {
		h.mr, _ = f.(mediumRanger)
	}
	return h, 0
}

// Read answers a read: spliced from the image file when the bytes are one
// run of it, else through the driver's ReadAt into dest. Any failure fails
// the whole request (EIO for a bad sector): a short answer would tell the
// kernel that the file ends there.
func (h *fileHandle) Read(ctx context.Context, dest []byte, off int64) (gofuse.ReadResult, syscall.Errno) {
	m := h.n.m
	if !m.enter() {
		return nil, syscall.EIO
	}
	defer m.leave()
	m.reads.Add(1)
	if h.mr != nil {
		rs, err := h.mr.MediumRanges(off, int64(len(dest)))
		if err == nil {
			switch {
			case len(rs) == 0:
				return bytesResult(nil), 0 // at or past the end
			case len(rs) == 1 && rs[0].Off >= 0 && rs[0].End() <= m.host.avail && rs[0].Len <= spliceMax:
				m.spliced.Add(1)
				return gofuse.ReadResultFd(uintptr(m.host.fd), m.host.base+rs[0].Off, int(rs[0].Len)), 0
			}
		}
	}
	k, err := h.ra.ReadAt(dest, off)
	if err != nil && err != io.EOF {
		return nil, h.errno(err)
	}
	return bytesResult(dest[:k]), 0
}

// bytesResult is a read's bytes. Unlike go-fuse's ReadResultData it has
// Slices, which go-fuse writes to /dev/fuse with one writev; for
// anything else it first tries to splice, which for bytes in memory only
// costs a pipe and (for a 1 MiB read, larger than a pipe) a log line.
type bytesResult []byte

func (b bytesResult) Bytes([]byte) ([]byte, gofuse.Status) { return b, gofuse.OK }
func (b bytesResult) Size() int                            { return len(b) }
func (b bytesResult) Done()                                {}
func (b bytesResult) Slices() ([][]byte, gofuse.Status)    { return [][]byte{b}, gofuse.OK }

// spliceMax is the largest read spliced: go-fuse's pipe holds the reply
// header and the data, and a pipe holds at most pipe-max-size bytes (1 MiB
// by default).
const spliceMax = 1<<20 - 64<<10

// errno maps an error of the open file; one that says the file is gone
// (it was removed while open) is ESTALE.
func (h *fileHandle) errno(err error) syscall.Errno {
	if h.n.id.removed.Load() && errors.Is(err, fs.ErrNotExist) {
		return syscall.ESTALE
	}
	return Errno(err)
}

// Write writes through to the driver, which has the bytes on the medium
// when it returns.
func (h *fileHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	m := h.n.m
	if !m.enter() {
		return 0, syscall.EIO
	}
	defer m.leave()
	if h.wf == nil {
		return 0, syscall.EBADF
	}
	if _, err := h.wf.WriteAt(data, off); err != nil {
		return 0, h.errno(err)
	}
	m.changed()
	return uint32(len(data)), 0
}

// Release closes the driver's file.
func (h *fileHandle) Release(ctx context.Context) syscall.Errno {
	h.file.Close()
	return 0
}

// Allocate (fallocate mode 0) extends the file with zeros; FAT cannot
// reserve clusters past the end of a file or punch holes.
func (h *fileHandle) Allocate(ctx context.Context, off, size uint64, mode uint32) syscall.Errno {
	m := h.n.m
	if !m.enter() {
		return syscall.EIO
	}
	defer m.leave()
	if h.wf == nil {
		return syscall.EBADF
	}
	if mode != 0 {
		return syscall.EOPNOTSUPP
	}
	fi, err := h.wf.Stat()
	if err != nil {
		return h.errno(err)
	}
	if end := int64(off + size); end > fi.Size() {
		if err := h.wf.Truncate(end); err != nil {
			return h.errno(err)
		}
		m.changed()
	}
	return 0
}

// dirHandle is an open directory: the listing read at opendir (read-only
// mounts: at its first request) and again at rewinddir, with "." and "..".
type dirHandle struct {
	n      *node
	loaded bool
	tag    int // read-only mounts: which read of the directory ents is
	ents   []fs.DirEntry
	err    error // what ended the listing early, reported after its entries
	pos    int   // next entry: 0 ".", 1 "..", 2+i ents[i]
	gen    int64 // the mount's change count when the listing was read

	// The entry handed out last, for the LOOKUP that READDIRPLUS makes of
	// it right after.
	lastName   string
	lastFI     fs.FileInfo
	lastID     *ident
	lastPath   string
	lastTarget string

	lastIdx int // its index in ents

	handed int // entries handed out through this handle
}

var (
	_ gofs.FileReaddirenter = (*dirHandle)(nil)
	_ gofs.FileSeekdirer    = (*dirHandle)(nil)
	_ gofs.FileLookuper     = (*dirHandle)(nil)
)

// load reads the listing. Damage after some entries is reported after
// them, so that ls shows what can be read and then the error.
//
// On read-only mounts, which open a handle per READDIRPLUS (see
// listingFS), the node keeps the listing, with its damage if any: a
// request that goes on with a listing (fresh is false) uses it, and one
// that starts a listing reads a damaged directory afresh, since the medium
// may give the sector on a later try. Its damage is reported after its
// entries to every listing, whichever request reaches the end.
func (d *dirHandle) load(fresh bool) syscall.Errno {
	n, m := d.n, d.n.m
	if !m.writable {
		n.mu.Lock()
		ents, err, tag := n.ents, n.entsErr, n.listTag
		n.mu.Unlock()
		if ents != nil && !(fresh && err != nil) {
			d.ents, d.err, d.tag = ents, err, tag
			d.loaded, d.pos, d.gen = true, 0, m.gen.Load()
			return 0
		}
	}
	gen := m.gen.Load()
	ents, err := readDirInOrder(m.fsys, n.path())
	if err != nil && len(ents) == 0 {
		return Errno(err)
	}
	if ents == nil {
		ents = []fs.DirEntry{} // read, and empty
	}
	d.ents, d.err = ents, err
	d.loaded, d.pos, d.gen = true, 0, gen
	if !m.writable {
		n.mu.Lock()
		if n.ents != nil && !sameNames(n.ents, ents) {
			// A damaged listing read again, and different now: offsets
			// handed out in the old one must not index the new one.
			n.listTag = n.listTag%maxListTag + 1
		}
		n.ents, n.entsErr = ents, err
		d.tag = n.listTag
		n.mu.Unlock()
	}
	return 0
}

// Listing offsets are tag<<tagShift | position: the tag says which read of
// a directory the position counts in (it changes when a damaged directory
// reads differently), and offsets stay below 2^31 for 32-bit telldir.
const (
	tagShift   = 24
	maxListTag = 127
)

// sameNames says whether two listings have the same names in order.
func sameNames(a, b []fs.DirEntry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name() != b[i].Name() {
			return false
		}
	}
	return true
}

// readDirInOrder lists directory p in the medium's own order, as the
// kernel's drivers do (vfat and isofs return entries as they are stored),
// not sorted by name: then the listing's order is the order of the inode
// numbers (which come from the entries' places), which is how readers
// such as cp go through a directory, and the small-file read-ahead, which
// follows the listing, stays ahead of them. (With a listing sorted by name
// on a FAT image whose entries are not, cp missed the read-ahead twice as
// often.) A damaged directory gives what could be read and the damage.
func readDirInOrder(fsys fs.FS, p string) ([]fs.DirEntry, error) {
	f, err := fsys.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rd, ok := f.(fs.ReadDirFile)
	if !ok {
		return fs.ReadDir(fsys, p)
	}
	return rd.ReadDir(-1)
}

func (d *dirHandle) Readdirent(ctx context.Context) (*gofuse.DirEntry, syscall.Errno) {
	m := d.n.m
	if !m.enter() {
		return nil, syscall.EIO
	}
	var de *gofuse.DirEntry
	errno := syscall.Errno(0)
	if !d.loaded {
		errno = d.load(d.pos == 0)
	}
	if errno == 0 {
		de, errno = d.readdirentLocked()
	}
	m.leave()
	if de == nil && errno == 0 && d.handed == 0 && m.pre != nil {
		// A request that starts at the end: the kernel asks again after
		// the last entry, and has made the entries' inodes by now, so
		// their pages can be pushed. (Read-only mounts, the only ones
		// with read-ahead, open a handle per request.)
		d.n.mu.Lock()
		l := d.n.listing
		d.n.mu.Unlock()
		if l != nil {
			m.pre.listed(l)
		}
	}
	return de, errno
}

// readdirentLocked hands out the next entry; the caller holds the gate.
func (d *dirHandle) readdirentLocked() (*gofuse.DirEntry, syscall.Errno) {
	m := d.n.m
	d.lastFI, d.lastID = nil, nil
	i := d.pos
	var de gofuse.DirEntry
	switch {
	case i == 0:
		de = gofuse.DirEntry{Name: ".", Mode: syscall.S_IFDIR, Ino: d.n.id.ino}
	case i == 1:
		de = gofuse.DirEntry{Name: "..", Mode: syscall.S_IFDIR, Ino: d.n.id.ino}
		if _, parent := d.n.Parent(); parent != nil {
			de.Ino = parent.StableAttr().Ino
		}
	case i-2 < len(d.ents):
		e := d.ents[i-2]
		fi, err := e.Info()
		if err != nil {
			return nil, Errno(err)
		}
		p := d.n.child(e.Name())
		if m.writable && m.gen.Load() != d.gen {
			// The volume changed since the listing was read: an entry
			// removed meanwhile must not come back (its place, and so
			// its inode number, may already be another file's).
			cur, err := m.lstat(p)
			if errors.Is(err, fs.ErrNotExist) {
				d.pos++
				return d.readdirentLocked()
			}
			if err == nil {
				fi = cur
			}
		}
		target := m.linkTarget(p, fi)
		id := m.inos.get(keyOf(fi, target, p))
		de = gofuse.DirEntry{Name: e.Name(), Mode: typeBits(fi.Mode()), Ino: id.ino}
		d.lastName, d.lastFI, d.lastID, d.lastPath, d.lastTarget = e.Name(), fi, id, p, target
		d.lastIdx = i - 2
		d.handed++
	default:
		if d.err != nil {
			err := d.err
			d.err = nil
			return nil, Errno(err)
		}
		d.publish()
		return nil, 0
	}
	d.pos++
	de.Off = uint64(d.tag)<<tagShift | uint64(d.pos)
	return &de, 0
}

// Seekdir moves to an offset Readdirent handed out; 0 reads the directory
// anew (rewinddir).
func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	m := d.n.m
	if !m.enter() {
		return syscall.EIO
	}
	defer m.leave()
	if off == 0 {
		return d.load(true)
	}
	if !d.loaded {
		if errno := d.load(false); errno != 0 {
			return errno
		}
	}
	if int(off>>tagShift) != d.tag {
		// An offset in a listing of this directory that has been read
		// again since, differently: it was damaged, and the reader's
		// listing ends with the damage.
		return syscall.EIO
	}
	d.pos = int(min(off&(1<<tagShift-1), uint64(len(d.ents)+2)))
	return 0
}

// Lookup serves READDIRPLUS's lookup of the entry just listed from the
// listing, without resolving its path again.
func (d *dirHandle) Lookup(ctx context.Context, name string, out *gofuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if d.lastFI == nil || name != d.lastName {
		return d.n.Lookup(ctx, name, out)
	}
	m := d.n.m
	if !m.enter() {
		return nil, syscall.EIO
	}
	defer m.leave()
	ch := d.n.newChild(ctx, d.lastPath, d.lastFI, d.lastTarget, d.lastID, out)
	if m.pre != nil {
		if c, ok := ch.Operations().(*node); ok {
			d.n.noteKid(d.lastIdx, len(d.ents), c)
		}
	}
	return ch, 0
}

// noteKid records the node READDIRPLUS made for entry i of the directory's
// n-entry listing, for read-ahead.
func (n *node) noteKid(i, entries int, c *node) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.kids) != entries {
		n.kids = make([]*node, entries)
	}
	n.kids[i] = c
}

// publish hands the nodes READDIRPLUS made for the directory's entries,
// in listing order, to the read-ahead, when a listing reaches its end.
func (d *dirHandle) publish() {
	n := d.n
	if n.m.pre == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	var kids []*node
	for _, c := range n.kids {
		if c != nil {
			kids = append(kids, c)
		}
	}
	if kids != nil {
		n.listing = &listing{kids: kids}
	}
	n.kids = nil
}
