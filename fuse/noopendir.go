package fuse

import (
	"sync"
	"sync/atomic"
	"syscall"

	gofuse "github.com/hanwen/go-fuse/v2/fuse"
)

// Listings without OPENDIR (read-only mounts).
//
// Every opendir(3) of a directory not listed yet costs a round trip that
// the reader waits for, and its closedir another request: 800 of them for
// a tree of 400 directories, each an OPENDIR that only says "go on". FUSE
// (7.29, Linux 5.1) lets a server answer OPENDIR with ENOSYS once: the
// kernel then opens directories without asking, keeps their listings
// (FOPEN_KEEP_CACHE | FOPEN_CACHE_DIR, as this package asks of read-only
// mounts anyway) and sends READDIR and READDIRPLUS with no handle, and
// RELEASEDIR never. go-fuse's node API needs a handle for a listing, so
// listingFS opens one itself at a listing's first READDIR(PLUS) of a
// directory, shares it among the readers of that directory (go-fuse
// serializes them, and seeks to each request's offset), and closes it
// when an answer comes back empty: the kernel asks again after the last
// entry, and marks its copy of the listing complete then. A handle whose
// reader stopped before the end stays open until a later reader gets
// there (the kernel goes on from its cached part) or the mount ends: at
// most one per directory.
//
// Writable mounts keep OPENDIR: their listings must not be cached.

// listingFS is the raw file system with listings opened on demand.
type listingFS struct {
	gofuse.RawFileSystem

	mu    sync.Mutex
	open  map[uint64]*sharedDir // node ID → the handle its listings share
	asked atomic.Int64          // OPENDIR requests (for tests)
}

// sharedDir is a directory handle that listingFS opened.
type sharedDir struct {
	fh    uint64
	users int  // requests using it now
	over  bool // a listing reached the end: close it when unused
}

func newListingFS(raw gofuse.RawFileSystem) *listingFS {
	return &listingFS{RawFileSystem: raw, open: make(map[uint64]*sharedDir)}
}

// OpenDir tells the kernel not to send OPENDIR again.
func (l *listingFS) OpenDir(cancel <-chan struct{}, in *gofuse.OpenIn, out *gofuse.OpenOut) gofuse.Status {
	l.asked.Add(1)
	return gofuse.ENOSYS
}

func (l *listingFS) ReadDir(cancel <-chan struct{}, in *gofuse.ReadIn, out *gofuse.DirEntryList) gofuse.Status {
	return l.list(cancel, in, out, l.RawFileSystem.ReadDir)
}

func (l *listingFS) ReadDirPlus(cancel <-chan struct{}, in *gofuse.ReadIn, out *gofuse.DirEntryList) gofuse.Status {
	return l.list(cancel, in, out, l.RawFileSystem.ReadDirPlus)
}

// list answers a READDIR(PLUS) through the directory's shared handle.
func (l *listingFS) list(cancel <-chan struct{}, in *gofuse.ReadIn, out *gofuse.DirEntryList,
	read func(<-chan struct{}, *gofuse.ReadIn, *gofuse.DirEntryList) gofuse.Status) gofuse.Status {
	if in.Fh != 0 {
		return read(cancel, in, out) // opened before the kernel stopped asking
	}
	d, st := l.acquire(cancel, in)
	if !st.Ok() {
		return st
	}
	req := *in
	req.Fh = d.fh
	start := out.Offset
	st = read(cancel, &req, out)
	// An empty answer ends the listing (the kernel asks again after the
	// last entry, and takes its copy of the listing as complete then).
	l.release(in, d, st.Ok() && out.Offset == start)
	return st
}

// acquire is the directory's shared handle, opened at its first listing.
// The medium is read without the lock (a bad sector must not hold up the
// listings of other directories); two first listings racing each open
// one, and the loser's is closed.
func (l *listingFS) acquire(cancel <-chan struct{}, in *gofuse.ReadIn) (*sharedDir, gofuse.Status) {
	l.mu.Lock()
	d := l.open[in.NodeId]
	if d != nil {
		d.users++
		l.mu.Unlock()
		return d, gofuse.OK
	}
	l.mu.Unlock()
	var out gofuse.OpenOut
	open := gofuse.OpenIn{InHeader: in.InHeader, Flags: syscall.O_RDONLY | syscall.O_DIRECTORY}
	if st := l.RawFileSystem.OpenDir(cancel, &open, &out); !st.Ok() {
		return nil, st
	}
	l.mu.Lock()
	d = l.open[in.NodeId]
	if d == nil {
		d = &sharedDir{fh: out.Fh}
		l.open[in.NodeId] = d
	}
	d.users++
	l.mu.Unlock()
	if d.fh != out.Fh {
		l.RawFileSystem.ReleaseDir(&gofuse.ReleaseIn{InHeader: in.InHeader, Fh: out.Fh})
	}
	return d, gofuse.OK
}

// release ends a request's use of d; end says its listing is over. The
// last user of a finished handle closes it, outside the lock (go-fuse
// waits for the handle's requests in flight).
func (l *listingFS) release(in *gofuse.ReadIn, d *sharedDir, end bool) {
	l.mu.Lock()
	d.users--
	if end && !d.over {
		d.over = true
		if l.open[in.NodeId] == d {
			delete(l.open, in.NodeId)
		}
	}
	closeIt := d.over && d.users == 0 // no one can take it again: it left the map
	l.mu.Unlock()
	if closeIt {
		l.RawFileSystem.ReleaseDir(&gofuse.ReleaseIn{InHeader: in.InHeader, Fh: d.fh})
	}
}

// handles is how many listings are open (for tests).
func (l *listingFS) handles() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.open)
}
