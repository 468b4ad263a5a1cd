package fuse

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"

	"github.com/mediafs/mediafs"
	"github.com/mediafs/mediafs/fat"
	"github.com/mediafs/mediafs/iso9660"
)

// mount is the state every node of one mount shares.
type mount struct {
	fsys     mediafs.FS
	wfs      mediafs.WritableFS // nil unless writable
	links    mediafs.LinkFS     // nil if fsys has no Lstat/ReadLink
	writable bool
	uid, gid uint32
	inos     *inoTable
	host     *hostData    // read-only mounts of plain image files: splice source
	pre      *prefetcher  // read-only mounts of plain image files: small-file read-ahead
	lists    *listingFS   // read-only mounts: listings without OPENDIR
	spliced  atomic.Int64 // reads answered from the image file by splice
	reads    atomic.Int64 // READ requests served

	closeTimeout time.Duration
	sync         *syncer // writable mounts

	// gate: every request holds it shared; stop takes it exclusively.
	// closing is set first, so that once stop waits no new request takes
	// the gate (a waiting writer would block them, and if stop gives up
	// they must fail, not wait).
	gate    sync.RWMutex
	closed  bool
	closing atomic.Bool

	gen atomic.Int64 // changes made through the mount (writable mounts)
}

func newMount(fsys mediafs.FS, o Options) (*mount, error) {
	m := &mount{fsys: fsys, writable: o.Writable, inos: newInoTable(), closeTimeout: o.CloseTimeout}
	if m.closeTimeout <= 0 {
		m.closeTimeout = 5 * time.Second
	}
	if l, ok := fsys.(mediafs.LinkFS); ok {
		m.links = l
	}
	if o.Writable {
		w, ok := fsys.(mediafs.WritableFS)
		if !ok {
			return nil, fmt.Errorf("%s: %w", fsys.Info().FS, mediafs.ErrReadOnlyFS)
		}
		m.wfs = w
		d := o.SyncAfter
		if d == 0 {
			d = 5 * time.Second
		}
		m.sync = &syncer{m: m, after: d}
	} else if m.host = openHost(fsys); m.host != nil {
		m.pre = newPrefetcher(m)
	}
	if o.OwnerSet {
		m.uid, m.gid = o.UID, o.GID
	} else {
		m.uid, m.gid = uint32(os.Getuid()), uint32(os.Getgid())
	}
	return m, nil
}

// enter admits a request; false once the mount is closed.
func (m *mount) enter() bool {
	if m.closing.Load() {
		return false
	}
	m.gate.RLock()
	if m.closed {
		m.gate.RUnlock()
		return false
	}
	return true
}

func (m *mount) leave() { m.gate.RUnlock() }

// stop waits (at most d) for the requests under way and refuses the rest.
func (m *mount) stop(d time.Duration) bool {
	if m.sync != nil {
		m.sync.stop()
	}
	// Refuse new requests first: a read-ahead worker waiting for a READ
	// (NOTIFY_STORE into pages a READ holds) then gets its answer, an EIO,
	// at once, and the wait for the worker is under the same time limit
	// as the wait for the requests (its medium may hang as theirs may).
	m.closing.Store(true)
	if m.pre != nil {
		m.pre.halt()
	}
	got := make(chan struct{})
	go func() {
		if m.pre != nil {
			m.pre.done.Wait()
		}
		m.gate.Lock()
		m.closed = true
		m.gate.Unlock()
		close(got)
	}()
	select {
	case <-got:
		return true
	case <-time.After(d):
		return false
	}
}

// changed notes a change, for the idle sync.
func (m *mount) changed() {
	m.gen.Add(1)
	if m.sync != nil {
		m.sync.touch()
	}
}

// syncer syncs a writable volume some time after a change, so that it is
// clean on the medium whenever the mount is idle.
type syncer struct {
	m     *mount
	after time.Duration

	mu      sync.Mutex
	timer   *time.Timer
	stopped bool
}

func (s *syncer) touch() {
	if s.after < 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer == nil && !s.stopped {
		s.timer = time.AfterFunc(s.after, s.fire)
	}
}

func (s *syncer) fire() {
	s.mu.Lock()
	s.timer = nil
	s.mu.Unlock()
	if !s.m.enter() {
		return
	}
	defer s.m.leave()
	s.m.wfs.Sync() // an error leaves the volume dirty; the next sync or unmount reports it
}

func (s *syncer) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
}

// node is a file, directory or link of the mount.
type node struct {
	gofs.Inode
	m  *mount
	id *ident

	mu      sync.Mutex
	attr    gofuse.Attr   // as last reported
	subdirs int           // directories: subdirectories, -1 when not counted
	shared  *fileHandle   // read-only mounts: the file, opened at the first read
	listing *listing      // directories: the last complete READDIRPLUS listing
	ents    []fs.DirEntry // directories of read-only mounts: the listing read last
	entsErr error         // and the damage that cut it short
	listTag int           // which read of the directory ents is (see tagShift)
	kids    []*node       // directories: the nodes READDIRPLUS made, by entry
	cached  atomic.Bool   // files: read, or pushed into the kernel's cache

	stream stream // large files: read-ahead while a tree is walked
}

var (
	_ gofs.NodeLookuper       = (*node)(nil)
	_ gofs.NodeGetattrer      = (*node)(nil)
	_ gofs.NodeSetattrer      = (*node)(nil)
	_ gofs.NodeOpendirHandler = (*node)(nil)
	_ gofs.NodeOpener         = (*node)(nil)
	_ gofs.NodeReadlinker     = (*node)(nil)
	_ gofs.NodeStatfser       = (*node)(nil)
	_ gofs.NodeCreater        = (*node)(nil)
	_ gofs.NodeMkdirer        = (*node)(nil)
	_ gofs.NodeUnlinker       = (*node)(nil)
	_ gofs.NodeRmdirer        = (*node)(nil)
	_ gofs.NodeRenamer        = (*node)(nil)
	_ gofs.NodeLinker         = (*node)(nil)
	_ gofs.NodeSymlinker      = (*node)(nil)
	_ gofs.NodeMknoder        = (*node)(nil)
	_ gofs.NodeFsyncer        = (*node)(nil)
	_ gofs.NodeOnForgetter    = (*node)(nil)
	_ gofs.NodeReader         = (*node)(nil)
	_ gofs.NodeFlusher        = (*node)(nil)
)

// newRoot makes the root node, with the inode number the medium gives the
// root directory.
func (m *mount) newRoot() (*node, error) {
	fi, err := m.fsys.Stat(".")
	if err != nil {
		return nil, fmt.Errorf("reading the root directory: %w", err)
	}
	id := m.inos.root(keyOf(fi, "", "."))
	n := &node{m: m, id: id, subdirs: -1}
	id.owner = n
	n.subdirs = m.countSubdirs(".", fi)
	m.fillAttr(&n.attr, fi, id, "", n.subdirs)
	return n, nil
}

// path is the node's io/fs path, from go-fuse's tree ("." for the root).
func (n *node) path() string {
	p := n.Path(nil)
	if p == "" {
		return "."
	}
	return p
}

// child is the io/fs path of name in directory n.
func (n *node) child(name string) string {
	if p := n.path(); p != "." {
		return p + "/" + name
	}
	return name
}

// lstat describes p without following a final symbolic link.
func (m *mount) lstat(p string) (fs.FileInfo, error) {
	if m.links != nil {
		return m.links.Lstat(p)
	}
	return m.fsys.Stat(p)
}

// linkTarget reads a symbolic link's target ("" for anything else).
func (m *mount) linkTarget(p string, fi fs.FileInfo) string {
	if fi.Mode()&fs.ModeSymlink == 0 || m.links == nil {
		return ""
	}
	t, _ := m.links.ReadLink(p)
	return t
}

// countSubdirs counts the subdirectories of directory p when the medium
// does not record its link count (FAT, ISO 9660 without Rock Ridge):
// -1 for files, for Rock Ridge directories, and when the directory cannot
// be read.
func (m *mount) countSubdirs(p string, fi fs.FileInfo) int {
	if !fi.IsDir() {
		return -1
	}
	if s, ok := fi.Sys().(*iso9660.Sys); ok && s.HasOwner && s.Nlink > 1 {
		return -1
	}
	ents, err := m.fsys.ReadDir(p)
	if err != nil {
		return -1
	}
	k := 0
	for _, e := range ents {
		if e.IsDir() {
			k++
		}
	}
	return k
}

// newChild makes (or finds, through go-fuse's table) the node of the file
// fi describes, at path p in directory n (target: its link target, if it
// is a symbolic link), and fills out.
func (n *node) newChild(ctx context.Context, p string, fi fs.FileInfo, target string, id *ident, out *gofuse.EntryOut) *gofs.Inode {
	m := n.m
	if id == nil {
		id = m.inos.get(keyOf(fi, target, p))
	}
	c := &node{m: m, id: id, subdirs: m.countSubdirs(p, fi)}
	m.fillAttr(&c.attr, fi, id, target, c.subdirs)
	out.Attr = c.attr
	ch := n.NewInode(ctx, c, gofs.StableAttr{Mode: c.attr.Mode & syscall.S_IFMT, Ino: id.ino, Gen: id.gen})
	m.inos.adopt(id, c)
	return ch
}

// Lookup finds name in directory n. FAT names match regardless of case, as
// on Windows and Linux's vfat.
func (n *node) Lookup(ctx context.Context, name string, out *gofuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	m := n.m
	if !m.enter() {
		return nil, syscall.EIO
	}
	defer m.leave()
	p := n.child(name)
	fi, err := m.lstat(p)
	if err != nil {
		e := Errno(err)
		if e == syscall.EINVAL || e == syscall.ENAMETOOLONG {
			e = syscall.ENOENT // a name the medium cannot hold is not there
		}
		return nil, e
	}
	return n.newChild(ctx, p, fi, m.linkTarget(p, fi), nil, out), 0
}

// stat describes the node: from its open file if the kernel gave one (the
// handle follows renames and outlives an unlink), else by its path.
func (n *node) stat(f gofs.FileHandle) (fs.FileInfo, string, error) {
	if h, ok := f.(*fileHandle); ok {
		fi, err := h.file.Stat()
		return fi, "", err
	}
	if n.id.removed.Load() {
		return nil, "", fs.ErrNotExist
	}
	p := n.path()
	fi, err := n.m.lstat(p)
	if err != nil {
		return nil, p, err
	}
	return fi, p, nil
}

// Getattr describes the node. An unlinked node that is still open shows
// what it last showed, with a link count of 0.
func (n *node) Getattr(ctx context.Context, f gofs.FileHandle, out *gofuse.AttrOut) syscall.Errno {
	m := n.m
	if !m.enter() {
		return syscall.EIO
	}
	defer m.leave()
	return n.getattr(f, out)
}

func (n *node) getattr(f gofs.FileHandle, out *gofuse.AttrOut) syscall.Errno {
	m := n.m
	fi, p, err := n.stat(f)
	if err != nil {
		if n.id.removed.Load() && errors.Is(err, fs.ErrNotExist) {
			n.mu.Lock()
			out.Attr = n.attr
			n.mu.Unlock()
			out.Attr.Nlink = 0
			return 0
		}
		return Errno(err)
	}
	n.mu.Lock()
	subdirs := n.subdirs
	n.mu.Unlock()
	if fi.IsDir() && subdirs < 0 && p != "" {
		subdirs = m.countSubdirs(p, fi)
	}
	target := ""
	if p != "" { // (an open file is no symbolic link)
		target = m.linkTarget(p, fi)
	}
	var a gofuse.Attr
	m.fillAttr(&a, fi, n.id, target, subdirs)
	n.mu.Lock()
	n.attr = a
	if fi.IsDir() {
		n.subdirs = subdirs
	}
	n.mu.Unlock()
	out.Attr = a
	return 0
}

// dirChanged forgets the subdirectory count of directory n.
func (n *node) dirChanged() {
	n.mu.Lock()
	n.subdirs = -1
	n.mu.Unlock()
}

// Readlink returns a Rock Ridge symbolic link's target as stored.
func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	m := n.m
	if !m.enter() {
		return nil, syscall.EIO
	}
	defer m.leave()
	if m.links == nil {
		return nil, syscall.EINVAL
	}
	t, err := m.links.ReadLink(n.path())
	if err != nil {
		return nil, Errno(err)
	}
	return []byte(t), 0
}

// Statfs reports the volume's size and, for FAT, its free space.
func (n *node) Statfs(ctx context.Context, out *gofuse.StatfsOut) syscall.Errno {
	m := n.m
	if !m.enter() {
		return syscall.EIO
	}
	defer m.leave()
	in := m.fsys.Info()
	bs := int64(in.BlockSize)
	if bs <= 0 {
		bs = 2048
	}
	out.Bsize = uint32(bs)
	out.Frsize = uint32(bs)
	out.Blocks = uint64(in.Size / bs)
	if in.Free != nil && *in.Free > 0 {
		out.Bfree = uint64(*in.Free / bs)
		out.Bavail = out.Bfree
	}
	out.NameLen = 255
	return 0
}

// Open opens a file for reading and writing on a writable mount. On a
// read-only mount it says ENOSYS, which tells the kernel (FUSE 7.23
// no_open) not to send OPEN and RELEASE at all and to keep the page cache
// (FOPEN_KEEP_CACHE is its default then): reads come without a handle and
// use the node's own open file (Read), which saves two round trips per
// file opened.
func (n *node) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	m := n.m
	if !m.enter() {
		return nil, 0, syscall.EIO
	}
	defer m.leave()
	acc := int(flags) & syscall.O_ACCMODE
	if n.id.removed.Load() {
		return nil, 0, syscall.ENOENT
	}
	p := n.path()
	if !m.writable {
		if acc != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0 {
			return nil, 0, syscall.EROFS
		}
		return nil, 0, syscall.ENOSYS
	}
	// O_APPEND is the kernel's business: it sends the offsets.
	f, err := m.wfs.OpenFile(p, acc|int(flags)&syscall.O_TRUNC, 0)
	if err != nil {
		return nil, 0, Errno(err)
	}
	if acc != syscall.O_RDONLY {
		m.changed() // the driver marked the volume dirty for the write to come
	}
	h, errno := m.newHandle(n, f, f)
	if errno != 0 {
		f.Close()
		return nil, 0, errno
	}
	return h, gofuse.FOPEN_KEEP_CACHE, 0
}

// OpendirHandle opens a directory. On a writable mount its listing is read
// once, here. On a read-only mount the kernel does not send OPENDIR (see
// listingFS), which opens a handle for each READDIR(PLUS) instead, and
// the listing is read (or taken from the node) at the handle's first use.
func (n *node) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	m := n.m
	if !m.enter() {
		return nil, 0, syscall.EIO
	}
	defer m.leave()
	d := &dirHandle{n: n}
	if m.writable {
		if errno := d.load(true); errno != 0 {
			return nil, 0, errno
		}
	}
	flag := uint32(0)
	if !m.writable {
		flag = gofuse.FOPEN_CACHE_DIR | gofuse.FOPEN_KEEP_CACHE
	}
	return d, flag, 0
}

// Fsync commits the volume's pending metadata and marks it clean.
func (n *node) Fsync(ctx context.Context, f gofs.FileHandle, flags uint32) syscall.Errno {
	m := n.m
	if !m.enter() {
		return syscall.EIO
	}
	defer m.leave()
	if !m.writable {
		return 0
	}
	return Errno(m.wfs.Sync())
}

// Read reads through the handle the kernel gives, or (read-only mounts,
// which have no OPEN) through the node's own open file.
func (n *node) Read(ctx context.Context, f gofs.FileHandle, dest []byte, off int64) (gofuse.ReadResult, syscall.Errno) {
	if h, ok := f.(*fileHandle); ok {
		return h.Read(ctx, dest, off)
	}
	h, errno := n.sharedHandle()
	if errno != 0 {
		return nil, errno
	}
	res, errno := h.Read(ctx, dest, off)
	if errno == 0 && n.m.pre != nil {
		if n.size() > prefetchMax {
			n.m.pre.largeRead(n, off, off+int64(len(dest)))
		}
		if off == 0 {
			n.m.pre.afterRead(n)
		} else {
			n.m.pre.lastRead.Store(time.Now().UnixNano())
		}
	}
	return res, errno
}

// sharedHandle opens the node's own file at its first read. The gate is
// taken before the node's mutex, as every request takes them.
func (n *node) sharedHandle() (*fileHandle, syscall.Errno) {
	if !n.m.enter() {
		return nil, syscall.EIO
	}
	defer n.m.leave()
	return n.sharedHandleEntered()
}

// sharedHandleEntered is sharedHandle for a caller that holds the gate.
func (n *node) sharedHandleEntered() (*fileHandle, syscall.Errno) {
	m := n.m
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.shared != nil {
		return n.shared, 0
	}
	f, err := m.fsys.Open(n.path())
	if err != nil {
		return nil, Errno(err)
	}
	h, errno := m.newHandle(n, f, nil)
	if errno != 0 {
		f.Close()
		return nil, errno
	}
	n.shared = h
	return h, 0
}

// Flush (each close(2)) has nothing to do: writes went through. A
// read-only mount says ENOSYS, so that the kernel stops sending it.
func (n *node) Flush(ctx context.Context, f gofs.FileHandle) syscall.Errno {
	if !n.m.writable {
		return syscall.ENOSYS
	}
	return 0
}

// OnForget releases the node's inode number and its own open file when the
// kernel forgets it.
func (n *node) OnForget() {
	n.m.inos.release(n.id, n)
	n.mu.Lock()
	if n.shared != nil {
		n.shared.file.Close()
		n.shared = nil
	}
	n.ents, n.entsErr, n.kids, n.listing = nil, nil, nil, nil
	n.mu.Unlock()
}

// writeOp admits a change on a writable mount.
func (n *node) writeOp() syscall.Errno {
	if !n.m.enter() {
		return syscall.EIO
	}
	if !n.m.writable {
		n.m.leave()
		return syscall.EROFS
	}
	return 0
}

// Setattr changes the size (truncate), the times (utimensat) and, on FAT,
// the read-only attribute (chmod without the owner's write bit).
func (n *node) Setattr(ctx context.Context, f gofs.FileHandle, in *gofuse.SetAttrIn, out *gofuse.AttrOut) syscall.Errno {
	if e := n.writeOp(); e != 0 {
		return e
	}
	m := n.m
	defer m.leave()
	h, _ := f.(*fileHandle)
	if uid, ok := in.GetUID(); ok && uid != m.uid {
		return syscall.EPERM
	}
	if gid, ok := in.GetGID(); ok && gid != m.gid {
		return syscall.EPERM
	}
	if n.id.removed.Load() && (h == nil || h.wf == nil) {
		return syscall.ENOENT
	}
	if size, ok := in.GetSize(); ok {
		if errno := n.truncate(h, int64(size)); errno != 0 {
			return errno
		}
		m.changed()
	}
	p := n.path()
	mt, mok := in.GetMTime()
	at, aok := in.GetATime()
	if (mok || aok) && !n.id.removed.Load() {
		if !mok {
			mt = time.Time{}
		}
		if !aok {
			at = time.Time{}
		}
		if err := m.wfs.Chtimes(p, at, mt); err != nil {
			return Errno(err)
		}
		m.changed()
	}
	if mode, ok := in.GetMode(); ok && !n.id.removed.Load() {
		if errno := n.chmod(p, mode); errno != 0 {
			return errno
		}
	}
	return n.getattr(f, out)
}

// truncate changes the file's size through its handle, or through one
// opened for the purpose.
func (n *node) truncate(h *fileHandle, size int64) syscall.Errno {
	if h != nil && h.wf != nil {
		return Errno(h.wf.Truncate(size))
	}
	if n.Mode()&syscall.S_IFMT == syscall.S_IFDIR {
		return syscall.EISDIR
	}
	f, err := n.m.wfs.OpenFile(n.path(), os.O_WRONLY, 0)
	if err != nil {
		return Errno(err)
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return Errno(err)
}

// attrSetter is implemented by FAT volumes (fat.FS.SetAttrs).
type attrSetter interface {
	SetAttrs(name string, attrs uint8) error
}

// chmod keeps what FAT can keep of a mode: the read-only attribute, set
// when the owner may not write. The other bits are ignored, as vfat's
// "quiet" option does, so that cp -p and friends work.
func (n *node) chmod(p string, mode uint32) syscall.Errno {
	m := n.m
	if n.Mode()&syscall.S_IFMT == syscall.S_IFDIR || p == "." {
		return 0
	}
	as, ok := m.fsys.(attrSetter)
	if !ok {
		return 0
	}
	fi, err := m.lstat(p)
	if err != nil {
		return Errno(err)
	}
	s, ok := fi.Sys().(*fat.Sys)
	if !ok {
		return 0
	}
	attrs := s.Attrs &^ fatReadOnly
	if mode&0o200 == 0 {
		attrs |= fatReadOnly
	}
	if attrs == s.Attrs {
		return 0
	}
	if err := as.SetAttrs(p, attrs); err != nil {
		return Errno(err)
	}
	m.changed()
	return 0
}

// createFlags are the open flags passed on to the driver when creating.
const createFlags = syscall.O_ACCMODE | syscall.O_EXCL | syscall.O_TRUNC

// Create makes and opens a regular file. A mode without the owner's write
// bit gives the file the read-only attribute.
func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *gofuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	if e := n.writeOp(); e != 0 {
		return nil, nil, 0, e
	}
	m := n.m
	defer m.leave()
	p := n.child(name)
	f, err := m.wfs.OpenFile(p, int(flags)&createFlags|os.O_CREATE, fs.FileMode(mode&0o777))
	if err != nil {
		return nil, nil, 0, Errno(err)
	}
	m.changed()
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, 0, Errno(err)
	}
	ch := n.newChild(ctx, p, fi, m.linkTarget(p, fi), nil, out)
	h, errno := m.newHandle(ch.Operations().(*node), f, f)
	if errno != 0 {
		f.Close()
		return nil, nil, 0, errno
	}
	return ch, h, gofuse.FOPEN_KEEP_CACHE, 0
}

// Mkdir makes a directory.
func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *gofuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if e := n.writeOp(); e != 0 {
		return nil, e
	}
	m := n.m
	defer m.leave()
	p := n.child(name)
	if err := m.wfs.Mkdir(p, fs.FileMode(mode&0o777)); err != nil {
		return nil, Errno(err)
	}
	m.changed()
	n.dirChanged()
	fi, err := m.lstat(p)
	if err != nil {
		return nil, Errno(err)
	}
	return n.newChild(ctx, p, fi, m.linkTarget(p, fi), nil, out), 0
}

// Unlink removes a file (not a directory).
func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	return n.remove(name, false)
}

// Rmdir removes an empty directory.
func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	return n.remove(name, true)
}

func (n *node) remove(name string, dir bool) syscall.Errno {
	if e := n.writeOp(); e != 0 {
		return e
	}
	m := n.m
	defer m.leave()
	p := n.child(name)
	fi, err := m.lstat(p)
	if err != nil {
		return Errno(err)
	}
	switch {
	case dir && !fi.IsDir():
		return syscall.ENOTDIR
	case !dir && fi.IsDir():
		return syscall.EISDIR
	}
	if err := m.wfs.Remove(p); err != nil {
		return Errno(err)
	}
	m.changed()
	m.inos.unkey(keyOf(fi, "", p))
	if dir {
		n.dirChanged()
	}
	return 0
}

// Rename renames or moves a file or directory, replacing what the new name
// names, as rename(2) does (RENAME_NOREPLACE is honoured; RENAME_EXCHANGE
// is not possible on FAT). The moved file keeps its inode number.
func (n *node) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if e := n.writeOp(); e != 0 {
		return e
	}
	m := n.m
	defer m.leave()
	np, ok := newParent.(*node)
	if !ok {
		return syscall.EXDEV
	}
	const noReplace = 1 // RENAME_NOREPLACE
	if flags&^noReplace != 0 {
		return syscall.EINVAL
	}
	op, npath := n.child(name), np.child(newName)
	sfi, err := m.lstat(op)
	if err != nil {
		return Errno(err)
	}
	skey := keyOf(sfi, "", op)
	tfi, terr := m.lstat(npath)
	if terr == nil && flags&noReplace != 0 && keyOf(tfi, "", npath) != skey {
		return syscall.EEXIST
	}
	if err := m.wfs.Rename(op, npath); err != nil {
		return Errno(err)
	}
	m.changed()
	if terr == nil {
		if tkey := keyOf(tfi, "", npath); tkey != skey {
			m.inos.unkey(tkey)
		}
	}
	if nfi, err := m.lstat(npath); err == nil {
		if id := m.inos.lookup(skey); id != nil {
			m.inos.moved(id, keyOf(nfi, "", npath))
		}
	} else {
		m.inos.unkey(skey)
	}
	if sfi.IsDir() {
		n.dirChanged()
		np.dirChanged()
	}
	return 0
}

// Link, Symlink and Mknod: FAT has no links, no symbolic links and no
// special files (EPERM, as vfat).
func (n *node) Link(ctx context.Context, target gofs.InodeEmbedder, name string, out *gofuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if e := n.writeOp(); e != 0 {
		return nil, e
	}
	n.m.leave()
	return nil, syscall.EPERM
}

func (n *node) Symlink(ctx context.Context, target, name string, out *gofuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if e := n.writeOp(); e != 0 {
		return nil, e
	}
	n.m.leave()
	return nil, syscall.EPERM
}

func (n *node) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *gofuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if e := n.writeOp(); e != 0 {
		return nil, e
	}
	n.m.leave()
	return nil, syscall.EPERM
}
