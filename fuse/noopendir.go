package fuse

import (
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
// mounts anyway), sends READDIRPLUS with no handle, and RELEASEDIR never.
//
// go-fuse's node API needs a handle for a listing, and a handle carries
// the state of one reader (its offset, the entries it gave last, one that
// did not fit). So listingFS opens a handle for each READDIR(PLUS) and
// closes it when the answer is made: the request's offset says where to
// go on (dirHandle.Seekdir), the node keeps the listing read (so opening
// costs no reading), and nothing outlives the request, however readers
// interleave, give up half way, or the kernel forgets the directory. A
// damaged directory is read afresh by every request, and its damage
// reported after its entries to every reader, as with OPENDIR.
//
// One thing changes for users: a directory that cannot be read at all
// opens, and its first getdents fails (ls says "reading directory"
// rather than "cannot open directory"), with the same EIO.
//
// Writable mounts keep OPENDIR: their listings must not be cached.

// listingFS is the raw file system with listings opened per request.
type listingFS struct {
	gofuse.RawFileSystem
	asked atomic.Int64 // OPENDIR requests (for tests)
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

// list answers a READDIR(PLUS) through a handle of its own.
func (l *listingFS) list(cancel <-chan struct{}, in *gofuse.ReadIn, out *gofuse.DirEntryList,
	read func(<-chan struct{}, *gofuse.ReadIn, *gofuse.DirEntryList) gofuse.Status) gofuse.Status {
	if in.Fh != 0 {
		return read(cancel, in, out) // a handle the kernel opened itself
	}
	var opened gofuse.OpenOut
	open := gofuse.OpenIn{InHeader: in.InHeader, Flags: syscall.O_RDONLY | syscall.O_DIRECTORY}
	if st := l.RawFileSystem.OpenDir(cancel, &open, &opened); !st.Ok() {
		return st
	}
	defer l.RawFileSystem.ReleaseDir(&gofuse.ReleaseIn{InHeader: in.InHeader, Fh: opened.Fh})
	req := *in
	req.Fh = opened.Fh
	return read(cancel, &req, out)
}
