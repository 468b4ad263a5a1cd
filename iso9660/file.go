package iso9660

import (
	"bytes"
	"compress/zlib"
	"errors"
	"io"
	"io/fs"
	"path"
	"sync"
	"time"

	"github.com/mediafs/mediafs/cache"
	"github.com/mediafs/mediafs/device"
)

// Open opens the named file or directory, following symbolic links.
func (f *FS) Open(name string) (fs.File, error) {
	n, err := f.lookup("open", name, true)
	if err != nil {
		return nil, err
	}
	info := &fileInfo{n: n, name: baseName(name), g: f.g}
	if n.dir {
		entries, lerr := f.children(n, name)
		return &dirFile{info: info, path: name, entries: entries, err: lerr}, nil
	}
	if n.err != nil {
		return nil, &fs.PathError{Op: "open", Path: slashPath(name), Err: n.err}
	}
	return &file{fs: f, n: n, name: name, info: info, zBlock: -1, last: lastSector{sec: -1}}, nil
}

// ReadDir lists the named directory, sorted by name. On damage it returns
// the entries it could read together with the error.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	n, err := f.lookup("readdir", name, true)
	if err != nil {
		return nil, err
	}
	if !n.dir {
		return nil, &fs.PathError{Op: "readdir", Path: slashPath(name), Err: ErrNotDir}
	}
	nodes, err := f.children(n, name)
	return f.entries(nodes), err
}

func (f *FS) entries(nodes []*node) []fs.DirEntry {
	out := make([]fs.DirEntry, len(nodes))
	for i, c := range nodes {
		out[i] = &fileInfo{n: c, name: c.name, g: f.g}
	}
	return out
}

// Stat describes the named file, following symbolic links within the image.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	n, err := f.lookup("stat", name, true)
	if err != nil {
		return nil, err
	}
	return &fileInfo{n: n, name: baseName(name), g: f.g}, nil
}

// Lstat describes the named file without following a final symbolic link
// (fs.ReadLinkFS).
func (f *FS) Lstat(name string) (fs.FileInfo, error) {
	n, err := f.lookup("lstat", name, false)
	if err != nil {
		return nil, err
	}
	return &fileInfo{n: n, name: baseName(name), g: f.g}, nil
}

// ReadLink returns the target of a Rock Ridge symbolic link as stored
// (fs.ReadLinkFS).
func (f *FS) ReadLink(name string) (string, error) {
	n, err := f.lookup("readlink", name, false)
	if err != nil {
		return "", err
	}
	if !n.isLink {
		return "", &fs.PathError{Op: "readlink", Path: slashPath(name), Err: fs.ErrInvalid}
	}
	return n.link, nil
}

// Info describes the volume.
func (f *FS) Info() Info {
	f.computeBootSizes()
	i := f.info
	f.mu.Lock()
	i.Warnings = append([]string(nil), f.warnings...)
	f.mu.Unlock()
	i.Boot = append([]BootEntry(nil), f.boot...)
	return i
}

// CacheStats reports the metadata cache's state.
func (f *FS) CacheStats() cache.Stats { return f.c.Stats() }

// Close drops the parsed directories. It does not close the device.
func (f *FS) Close() error {
	f.mu.Lock()
	clear(f.dirs)
	f.dirNodes = 0
	f.mu.Unlock()
	return nil
}

func baseName(name string) string {
	if name == "." {
		return "."
	}
	return path.Base(name)
}

// fileInfo is both the fs.FileInfo and the fs.DirEntry of a node.
type fileInfo struct {
	n    *node
	name string
	g    geometry
}

func (i *fileInfo) Name() string               { return i.name }
func (i *fileInfo) Size() int64                { return i.n.size }
func (i *fileInfo) Mode() fs.FileMode          { return i.n.fileMode() }
func (i *fileInfo) ModTime() time.Time         { return i.n.mtimeOrDate() }
func (i *fileInfo) IsDir() bool                { return i.n.dir }
func (i *fileInfo) Type() fs.FileMode          { return i.Mode().Type() }
func (i *fileInfo) Info() (fs.FileInfo, error) { return i, nil }
func (i *fileInfo) String() string             { return fs.FormatFileInfo(i) }

// Sys returns a *Sys.
func (i *fileInfo) Sys() any {
	n := i.n
	s := &Sys{
		Extents:    append([]Extent(nil), n.sections...),
		Ino:        uint64(n.recOff),
		Nlink:      1,
		Hidden:     n.flags&flagHidden != 0,
		Associated: n.flags&flagAssociated != 0,
		Atime:      n.atime,
		Ctime:      n.ctime,
		Compressed: n.zf != nil,
	}
	if n.rawSize > 0 {
		s.Alloc = n.alloc(i.g)
	}
	if n.dir {
		s.Nlink = 2
	}
	if n.hasPX {
		s.UID, s.GID, s.HasOwner, s.Nlink = n.uid, n.gid, true, n.nlink
		if n.hasIno && n.ino != 0 {
			s.Ino = n.ino
		}
	}
	if n.hasPN {
		s.DevMajor, s.DevMinor = n.major, n.minor
		s.Rdev = uint64(n.major)<<32 | uint64(n.minor)
	}
	return s
}

// dirFile is an open directory (fs.ReadDirFile).
type dirFile struct {
	info *fileInfo
	path string
	handle
	entries []*node
	pos     int
	err     error // damage in the listing, returned once the entries are out
}

// handle is the open or closed state of a file or directory.
type handle struct {
	mu     sync.Mutex
	closed bool
}

// Close marks the handle closed; a second Close fails.
func (h *handle) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return fs.ErrClosed
	}
	h.closed = true
	return nil
}

// lock locks an open handle; a closed one gives fs.ErrClosed.
func (h *handle) lock() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return fs.ErrClosed
	}
	return nil
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: slashPath(d.path), Err: ErrIsDir}
}

// ReadDir returns the next n entries (all remaining when n <= 0), as
// fs.ReadDirFile specifies.
func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	if err := d.lock(); err != nil {
		return nil, err
	}
	defer d.mu.Unlock()
	rest := d.entries[d.pos:]
	if n > 0 && len(rest) > n {
		rest = rest[:n]
	}
	d.pos += len(rest)
	out := make([]fs.DirEntry, len(rest))
	for i, c := range rest {
		out[i] = &fileInfo{n: c, name: c.name, g: d.info.g}
	}
	if d.pos == len(d.entries) && d.err != nil {
		err := d.err
		d.err = nil
		return out, err
	}
	if n > 0 && len(out) == 0 {
		return out, io.EOF
	}
	return out, nil
}

// file is an open regular file (or device node, FIFO...: those read as
// empty). It implements io.ReaderAt and io.Seeker; ReadAt is safe for
// concurrent use.
type file struct {
	fs   *FS
	n    *node
	name string
	info *fileInfo

	handle
	off  int64
	last lastSector

	zmu      sync.Mutex
	zBlock   int64 // index of the block in zData, -1 when none
	zData    []byte
	zHeader  error // result of the header check; set once zChecked
	zChecked bool
}

func (fl *file) Stat() (fs.FileInfo, error) { return fl.info, nil }

func (fl *file) Read(p []byte) (int, error) {
	if err := fl.lock(); err != nil {
		return 0, err
	}
	defer fl.mu.Unlock()
	n, err := fl.ReadAt(p, fl.off)
	fl.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func (fl *file) Seek(offset int64, whence int) (int64, error) {
	if err := fl.lock(); err != nil {
		return 0, err
	}
	defer fl.mu.Unlock()
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += fl.off
	case io.SeekEnd:
		offset += fl.n.size
	default:
		return 0, &fs.PathError{Op: "seek", Path: slashPath(fl.name), Err: fs.ErrInvalid}
	}
	if offset < 0 {
		return 0, &fs.PathError{Op: "seek", Path: slashPath(fl.name), Err: fs.ErrInvalid}
	}
	fl.off = offset
	return offset, nil
}

// ReadAt reads the file's bytes at off. Reads are clipped to the file's size
// (R-ISO-4): at or past the end it returns 0, io.EOF, and a read that
// reaches the end returns the shorter count with io.EOF.
func (fl *file) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: slashPath(fl.name), Err: fs.ErrInvalid}
	}
	size := fl.n.size
	if fl.n.isLink || (fl.n.hasPX && !fl.n.fileMode().IsRegular()) {
		size = 0 // symbolic links and device nodes have no readable data
	}
	if off >= size {
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > size-off {
		p = p[:size-off]
	}
	var n int
	var err error
	if fl.n.zf != nil {
		n, err = fl.readZisofs(p, off)
	} else {
		n, err = fl.fs.readRaw(fl.n, p, off, &fl.last)
	}
	if err != nil {
		return n, &fs.PathError{Op: "read", Path: slashPath(fl.name), Err: err}
	}
	if n < want {
		return n, io.EOF
	}
	return n, nil
}

// MediumRanges maps the file's bytes [off, off+n) (clipped to its size) to
// byte ranges of the device, in file order, so that callers may copy them
// from the device's host file in the kernel (see device.HostFile). zisofs
// files, whose bytes are not on the medium as such, and files without data
// (links, device nodes) return an error: read them with ReadAt.
func (fl *file) MediumRanges(off, n int64) ([]device.Range, error) {
	perr := func(err error) error { return &fs.PathError{Op: "read", Path: slashPath(fl.name), Err: err} }
	if fl.n.zf != nil || fl.n.isLink || (fl.n.hasPX && !fl.n.fileMode().IsRegular()) {
		return nil, perr(errors.ErrUnsupported)
	}
	if off < 0 || n < 0 {
		return nil, perr(fs.ErrInvalid)
	}
	end := min(off+n, fl.n.size)
	var out []device.Range
	for pos := off; pos < end; {
		disk, run, ok := fl.fs.mapOffset(fl.n, pos)
		if !ok {
			return nil, perr(corrupt(fl.n.recOff, "file offset %d is not mapped", pos))
		}
		k := min(run, end-pos)
		out = device.AppendRange(out, disk, k)
		pos += k
	}
	return out, nil
}

// Device is the device the volume is read from.
func (f *FS) Device() device.Device { return f.dev }

// testMapHook, when set by a test, sees every file offset the mapping
// function is asked about, with the file's allocation (T-ISO-4).
var testMapHook func(off, alloc int64)

// mapOffset maps a file offset (below the file's raw size, hence below its
// allocation) to a byte offset on the medium and the number of file bytes
// that follow it contiguously there. Interleaved sections (ECMA-119 6.4.3)
// hold Unit blocks of data, then Gap blocks skipped, the last unit partial.
func (f *FS) mapOffset(n *node, off int64) (disk, run int64, ok bool) {
	if testMapHook != nil {
		testMapHook(off, n.alloc(f.g))
	}
	for _, s := range n.sections {
		if off >= s.Length {
			off -= s.Length
			continue
		}
		base := f.g.blockToByte(s.Block)
		if s.Unit == 0 || s.Gap == 0 {
			return base + off, s.Length - off, true
		}
		unit := f.g.blockToByte(int64(s.Unit))
		stride := f.g.blockToByte(int64(s.Unit + s.Gap))
		k, in := off/unit, off%unit
		return base + k*stride + in, min(unit-in, s.Length-off), true
	}
	return 0, 0, false
}

// readRaw reads the on-disk bytes of n at off; off+len(p) must not exceed
// n.rawSize.
func (f *FS) readRaw(n *node, p []byte, off int64, ls *lastSector) (int, error) {
	done := 0
	for done < len(p) {
		disk, run, ok := f.mapOffset(n, off+int64(done))
		if !ok {
			return done, corrupt(n.recOff, "file offset %d is not mapped", off+int64(done))
		}
		k := int(min(run, int64(len(p)-done)))
		if err := f.readDisk(p[done:done+k], disk, ls); err != nil {
			return done, err
		}
		done += k
	}
	return done, nil
}

// lastSector keeps the partial sector a file read last, so that small
// sequential reads do not read the same sector again and again.
type lastSector struct {
	mu   sync.Mutex
	sec  int64 // byte offset of the sector held, -1 when none
	data []byte
}

// readDisk reads the medium's bytes [off, off+len(p)) in whole 2048-byte
// sectors (R-ISO-5): the sector-aligned middle goes straight into p, the
// partial sectors at either end through a bounce buffer of one sector (ls,
// when not nil), of which only the wanted bytes are copied. Nothing is read
// past the end of the medium.
func (f *FS) readDisk(p []byte, off int64, ls *lastSector) error {
	end := off + int64(len(p))
	if off < 0 || end > f.dev.Size() {
		return &device.SectorError{Op: "read", Sector: byteToSector(max(min(off, f.dev.Size()), 0)), Err: device.ErrOutOfRange}
	}
	if ls == nil {
		ls = &lastSector{sec: -1}
	}
	partial := func(q []byte, at int64) error {
		sec := sectorFloor(at)
		ls.mu.Lock()
		defer ls.mu.Unlock()
		if ls.sec != sec {
			if ls.data == nil {
				ls.data = make([]byte, sectorSize)
			}
			ls.sec = -1
			b := ls.data[:min(sectorSize, f.dev.Size()-sec)]
			if err := f.deviceRead(b, sec); err != nil {
				return err
			}
			ls.sec, ls.data = sec, b
		}
		copy(q, ls.data[at-sec:])
		return nil
	}
	for len(p) > 0 {
		if off%sectorSize != 0 || len(p) < sectorSize {
			k := min(int64(len(p)), sectorCeil(off+1)-off)
			if err := partial(p[:k], off); err != nil {
				return err
			}
			p, off = p[k:], off+k
			continue
		}
		k := sectorFloor(int64(len(p)))
		if err := f.deviceRead(p[:k], off); err != nil {
			return err
		}
		p, off = p[k:], off+k
	}
	return nil
}

// deviceRead reads whole sectors; a short transfer without an error is
// reported as device.ErrShortIO.
func (f *FS) deviceRead(p []byte, off int64) error {
	n, err := f.dev.ReadAt(p, off)
	if err != nil {
		return err
	}
	if n < len(p) {
		return &device.SectorError{Op: "read", Sector: byteToSector(off + int64(n)), Err: device.ErrShortIO}
	}
	return nil
}

// zisofsMagic starts a zisofs file (zisofs-tools "compressed file header").
var zisofsMagic = []byte{0x37, 0xE4, 0x53, 0x96, 0xC9, 0xDB, 0xD6, 0x07}

// zisofs header (zisofs-tools): magic (8), uncompressed size (u32 LE),
// header size in 4-byte units, log2 block size, 2 reserved bytes; then a
// table of nblocks+1 u32 LE pointers to the compressed blocks.
func (fl *file) checkZisofsHeader() error {
	if fl.zChecked {
		return fl.zHeader
	}
	fl.zChecked = true
	z := fl.n.zf
	hdr := make([]byte, 16)
	if fl.n.rawSize < int64(z.HeaderSize) || fl.n.rawSize < 16 {
		fl.zHeader = corrupt(fl.n.recOff, "zisofs file of %d bytes is shorter than its header", fl.n.rawSize)
		return fl.zHeader
	}
	if _, err := fl.fs.readRaw(fl.n, hdr, 0, &fl.last); err != nil {
		fl.zChecked = false // a media error may go away; try again next time
		return err
	}
	if !bytes.Equal(hdr[:8], zisofsMagic) {
		fl.zHeader = corrupt(fl.n.recOff, "zisofs file without the zisofs magic")
	}
	return fl.zHeader
}

func (fl *file) readZisofs(p []byte, off int64) (int, error) {
	fl.zmu.Lock()
	defer fl.zmu.Unlock()
	if err := fl.checkZisofsHeader(); err != nil {
		return 0, err
	}
	bs := int64(1) << fl.n.zf.Log2Block
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		blk := pos / bs
		data, err := fl.zisofsBlock(blk, bs)
		if err != nil {
			return done, err
		}
		in := pos - blk*bs
		if in >= int64(len(data)) {
			return done, corrupt(fl.n.recOff, "zisofs block %d is short", blk)
		}
		done += copy(p[done:], data[in:])
	}
	return done, nil
}

// zisofsBlock returns uncompressed block i, bounds-checking its pointers.
func (fl *file) zisofsBlock(i, bs int64) ([]byte, error) {
	if fl.zBlock == i {
		return fl.zData, nil
	}
	z := fl.n.zf
	nblocks := (z.Size + bs - 1) / bs
	tableEnd := int64(z.HeaderSize) + 4*(nblocks+1)
	if tableEnd > fl.n.rawSize {
		return nil, corrupt(fl.n.recOff, "zisofs block table (%d bytes) is larger than the file (%d)", tableEnd, fl.n.rawSize)
	}
	ptr := make([]byte, 8)
	if _, err := fl.fs.readRaw(fl.n, ptr, int64(z.HeaderSize)+4*i, &fl.last); err != nil {
		return nil, err
	}
	p0, p1 := int64(le32(ptr)), int64(le32(ptr[4:]))
	want := min(bs, z.Size-i*bs)
	if p0 < tableEnd || p1 < p0 || p1 > fl.n.rawSize || p1-p0 > 2*bs+1024 {
		return nil, corrupt(fl.n.recOff, "zisofs block %d has bad pointers [%d, %d)", i, p0, p1)
	}
	out := make([]byte, want)
	if p1 > p0 {
		raw := make([]byte, p1-p0)
		if _, err := fl.fs.readRaw(fl.n, raw, p0, &fl.last); err != nil {
			return nil, err
		}
		zr, err := zlib.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, corrupt(fl.n.recOff, "zisofs block %d: %v", i, err)
		}
		if _, err := io.ReadFull(zr, out); err != nil {
			return nil, corrupt(fl.n.recOff, "zisofs block %d: %v", i, err)
		}
	}
	fl.zBlock, fl.zData = i, out
	return out, nil
}
